//! The `tendero` binary: `migrate`, `user create`, `serve` and SIGTERM.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_tendero");

fn tendero(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TENDERO_DATA_DIR", dir.join("data"))
        .env("TENDERO_EMBEDDER", "hash")
        .env("TENDERO_DEMO", "false")
        .env("TENDERO_LOG_FORMAT", "pretty");
    cmd
}

#[test]
fn migrate_and_create_users() {
    let dir = tempfile::tempdir().unwrap();
    let out = tendero(dir.path()).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("data/tendero.db").exists());

    let out = tendero(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "vende@tienda.co",
            "--role",
            "vendedor",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("created vendedor user vende@tienda.co"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("password: ") && l.len() > 20),
        "{stdout}"
    );

    let mut child = tendero(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "jefa@tienda.co",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"una-clave-larga\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!stdout.contains("password:"), "{stdout}");

    let dup = tendero(dir.path())
        .args(["user", "create", "--email", "JEFA@tienda.co"])
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("ya existe"));
}

#[test]
fn serve_refuses_a_missing_secret_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out = tendero(dir.path()).arg("serve").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TENDERO_JWT_SECRET"));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tendero(dir.path())
        .arg("serve")
        .env("TENDERO_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "TENDERO_JWT_SECRET",
            "a-secret-that-is-long-enough-for-hs256!!",
        )
        .env("TENDERO_ADMIN_EMAIL", "admin@tienda.co")
        .env("TENDERO_ADMIN_PASSWORD", "clave-admin-1234")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let token = runtime.block_on(async {
        loop {
            let health = client.get(format!("{base}/health")).send().await;
            if health.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let session: serde_json::Value = client
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": "admin@tienda.co", "password": "clave-admin-1234"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        session["token"].as_str().unwrap().to_owned()
    });
    assert!(!token.is_empty());

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_command_writes_a_report() {
    use crate::helpers::{Backend, spawn_app};
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let cliente = app
        .new_cliente("Cliente Programado", "prog@correo.co")
        .await;
    app.new_producto("CLI-1", "2500.50", 10).await;
    let order = json!({"cliente_id": cliente["id"], "items": [{"sku": "CLI-1", "cantidad": 2}]});
    let kept = app
        .post("/api/pedidos", &app.admin, order.clone())
        .await
        .expect(201);
    let cancelled = app
        .post("/api/pedidos", &app.admin, order)
        .await
        .expect(201);
    app.delete(&format!("/api/pedidos/{}", cancelled["id"]), &app.admin)
        .await
        .expect(200);

    let out = tempfile::tempdir().unwrap();
    let salida = out.path().join("pedidos.csv");
    let url = app.state.settings().database.url().to_owned();
    let today = chrono::Utc::now().date_naive().to_string();
    let run = |args: Vec<String>| {
        let url = url.clone();
        let dir = out.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            tendero(&dir)
                .env("TENDERO_DATABASE_URL", url)
                .args(args)
                .output()
                .unwrap()
        })
    };
    let args = |extra: &[&str]| -> Vec<String> {
        ["export", "pedidos", "--formato", "csv", "--desde", &today]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let done = run(args(&[
        "--estado",
        "pendiente",
        "--salida",
        salida.to_str().unwrap(),
    ]))
    .await
    .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stderr).contains("exported 1 rows"));
    let text = std::fs::read_to_string(&salida).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], kept["id"].to_string());
    assert_eq!(&rows[0][5], "5001.00");
    let names: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["pedidos.csv"], "no partial file left");

    let refused = run(args(&["--estado", "perdido", "--salida", "x.csv"]))
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--estado perdido"));
}

/// `tendero eval` on a small judged set: the JSON report scores each mode, a query
/// whose only relevant product is found first scores 1, and `--split` evaluates
/// one half of the queries.
#[test]
fn eval_scores_a_small_judged_set() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set");
    std::fs::create_dir(&set).unwrap();
    std::fs::write(
        set.join("products.csv"),
        "sku,nombre\nP1,Taladro percutor inalámbrico\nP2,Licuadora de vaso de vidrio\n\
         P3,Martillo de uña\nP4,Sartén antiadherente\nP5,Escalera de aluminio\n",
    )
    .unwrap();
    let queries: Vec<String> = (1..=20)
        .map(|i| {
            format!(
                "q{i},{}",
                ["martillo", "licuadora", "sartén", "escalera"][i % 4]
            )
        })
        .collect();
    std::fs::write(
        set.join("queries.csv"),
        format!("query_id,query\n{}\n", queries.join("\n")),
    )
    .unwrap();
    let judgments: Vec<String> = (1..=20)
        .map(|i| format!("q{i},{},2", ["P3", "P2", "P4", "P5"][i % 4]))
        .collect();
    std::fs::write(
        set.join("judgments.csv"),
        format!("query_id,sku,grade\n{}\n", judgments.join("\n")),
    )
    .unwrap();
    let eval = |extra: &[&str]| {
        let out = tendero(dir.path())
            .args(["eval", set.to_str().unwrap(), "--json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let report = eval(&[]);
    assert_eq!(report["products"], 5);
    assert_eq!(report["queries"], 20);
    assert_eq!(report["judged_queries"], 20);
    let modes: Vec<&str> = report["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["hybrid", "vector", "bm25"]);
    let bm25 = &report["modes"][2];
    assert_eq!(bm25["ndcg_at_10"], 1.0, "{report}");
    assert_eq!(bm25["mrr_at_10"], 1.0, "{report}");

    let tune = eval(&["--split", "tune"]);
    let test = eval(&["--split", "test"]);
    assert_eq!(tune["split"], "tune");
    let halves = tune["queries"].as_u64().unwrap() + test["queries"].as_u64().unwrap();
    assert_eq!(halves, 20);
    assert!(tune["queries"].as_u64().unwrap() > 0 && test["queries"].as_u64().unwrap() > 0);
}

/// `tendero reindex` rebuilds a lost index from the database, and a second run
/// finds nothing to do.
#[test]
fn reindex_rebuilds_the_index_from_the_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.csv"),
        "sku,nombre,categoria,precio,stock\nR-1,Taladro percutor,ferretería,189900,4\n\
         R-2,Licuadora de vidrio,cocina,249900,2\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = tendero(dir.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["ingest", "productos", "p.csv"]);
    std::fs::remove_dir_all(dir.path().join("data/lancedb")).unwrap();
    let rebuilt = run(&["reindex"]);
    assert!(
        rebuilt.contains("2 embedded, 0 restamped, 0 removed, 0 unchanged"),
        "{rebuilt}"
    );
    let again = run(&["reindex"]);
    assert!(
        again.contains("0 embedded, 0 restamped, 0 removed, 2 unchanged"),
        "{again}"
    );
}

/// `tendero transcribe` decodes a recording and runs the configured model on it
/// (the weightless test model hears nothing); without a model it measures decoding
/// alone.
#[test]
fn transcribe_reports_decoding_and_the_transcript() {
    use crate::recordings::{Sample, Signal, save, wav};
    let dir = tempfile::tempdir().unwrap();
    let file = save(
        dir.path(),
        "tono.wav",
        &wav(Signal::Tone(440.0), 1.0, 44_100, 2, Sample::I16),
    );
    // The JSON report and standard error of a run, with the test model or none.
    let transcribe = |with_model: bool| {
        let mut command = tendero(dir.path());
        if with_model {
            command
                .env("TENDERO_WHISPER_MODEL", crate::voice::test_model())
                .env("TENDERO_WHISPER_THREADS", "1");
        }
        let out = command
            .args(["transcribe", file.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (report, stderr)
    };
    let (report, _) = transcribe(true);
    assert_eq!(report["format"], "wav");
    assert_eq!(report["source_rate"], 44_100);
    assert_eq!(report["channels"], 2);
    assert!(
        (report["audio_ms"].as_f64().unwrap() - 1000.0).abs() < 1.0,
        "{report}"
    );
    assert_eq!(report["text"], "", "{report}");
    assert!(report["transcribe_ms"].as_f64().unwrap() > 0.0);

    let (report, stderr) = transcribe(false);
    assert!(report.get("transcribe_ms").is_none(), "{report}");
    assert!(stderr.contains("measuring decoding only"), "{stderr}");
}

/// `tendero eval recomendaciones` on a small orders file in the Online Retail layout:
/// both protocols, the table and the JSON, and a clear error for a file it cannot read.
#[test]
fn eval_scores_recommendations_on_an_orders_file() {
    let dir = tempfile::tempdir().unwrap();
    let orders = dir.path().join("pedidos.csv");
    let mut csv = String::from(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n",
    );
    // 40 customers buy 10001 with 10002 (and some 10003 with 10004), over 50 days;
    // lines the protocol drops: a cancellation, postage, no customer, a return.
    for c in 0..40 {
        for day in 0..3 {
            let invoice = 500_000 + c * 10 + day;
            let date = format!(
                "2011-0{}-{:02} 10:00:00",
                1 + (day * 20 + c % 20) / 28,
                1 + (day * 20 + c % 20) % 28
            );
            let (a, b) = if c % 3 == 0 {
                (10003, 10004)
            } else {
                (10001, 10002)
            };
            csv.push_str(&format!("{invoice},{a},A,1,{date},1.0,{},UK\n", 12000 + c));
            csv.push_str(&format!("{invoice},{b},B,2,{date},2.0,{},UK\n", 12000 + c));
        }
    }
    csv.push_str("C600000,10001,A,-1,2011-01-05 10:00:00,1.0,12000,UK\n");
    csv.push_str("600001,POST,Postage,1,2011-01-05 10:00:00,18.0,12000,UK\n");
    csv.push_str("600002,10001,A,1,2011-01-05 10:00:00,1.0,,UK\n");
    std::fs::write(&orders, csv).unwrap();

    let output = tendero(dir.path())
        .args(["eval", "recomendaciones", orders.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("temporal protocol: 4 products"), "{stdout}");
    assert!(stdout.contains("| fusion ("), "{stdout}");

    let output = tendero(dir.path())
        .args([
            "eval",
            "recomendaciones",
            orders.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // Customers re-buy their pair: repurchase finds every product bought later.
    let repurchase = report["all"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model"] == "repurchase")
        .unwrap();
    assert!(
        repurchase["metrics"]["hit_rate"].as_f64().unwrap() > 0.99,
        "{report}"
    );

    let output = tendero(dir.path())
        .args([
            "eval",
            "recomendaciones",
            orders.to_str().unwrap(),
            "--protocolo",
            "leave-one-out",
            "--min-productos",
            "2",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("leave-one-out: 40 users, 4 items"),
        "{stdout}"
    );
    // The sequential model trains on the 40 sequences and gets its row.
    assert!(
        !stdout.contains("sequential model: not trained"),
        "{stdout}"
    );
    assert!(stdout.contains("| sequential (gSASRec) |"), "{stdout}");
    let output = tendero(dir.path())
        .args([
            "eval",
            "recomendaciones",
            orders.to_str().unwrap(),
            "--calibracion",
            "2",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--calibracion must be between 0 and 1"),
        "{stderr}"
    );

    let bad = dir.path().join("malo.csv");
    std::fs::write(&bad, "InvoiceNo,StockCode\n1,10001\n").unwrap();
    let output = tendero(dir.path())
        .args(["eval", "recomendaciones", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("malo.csv: no column Quantity"), "{stderr}");
}
