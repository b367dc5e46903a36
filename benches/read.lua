-- wrk script: GET one product with a staff token.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
