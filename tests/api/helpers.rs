//! Spawns the real server on a random port with a fresh database and talks to it
//! over HTTP.
//!
//! Every scenario runs on SQLite (a file in a temp folder) and, when
//! `TENDERO_TEST_DATABASE_URL` points at PostgreSQL, on a fresh PostgreSQL database
//! created for that test and dropped afterwards.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tempfile::TempDir;
use tendero::config::{EmbedderChoice, Secret, Settings};
use tendero::server::{self, Services};
use tokio::sync::oneshot;

use crate::skip::skip;

pub const ADMIN_EMAIL: &str = "admin@tienda.test";
pub const ADMIN_PASSWORD: &str = "clave-de-admin-segura";
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named scenario `async fn name(backend: Backend)` once per backend.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

/// A response: status, headers and the body parsed as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The stable error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self.body
    }

    /// Asserts an error reply with this status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.code(), code, "body: {}", self.text);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error without message: {}",
            self.text
        );
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: Services,
    pub client: reqwest::Client,
    pub admin: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: TempDir,
    pg_database: Option<(String, String)>,
}

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// Settings for a test server: random port, temp data folder, known admin and secret.
pub fn test_settings(dir: &TempDir) -> Settings {
    let mut s = Settings::default();
    s.server.addr = "127.0.0.1:0".parse().unwrap();
    s.server.data_dir = dir.path().to_path_buf();
    s.server.shutdown_grace_secs = 5;
    s.server.demo = false;
    s.auth.jwt_secret = Some(Secret::new(JWT_SECRET));
    s.auth.admin_email = Some(ADMIN_EMAIL.to_owned());
    s.auth.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    s.limits.rate_limit_per_second = 100_000;
    s.limits.rate_limit_burst = 100_000;
    s.limits.export_rate_limit_per_minute = 1_000_000;
    s.limits.export_rate_limit_burst = 100_000;
    s.database.db_max_connections = 8;
    s.export.exports_dir = dir.path().join("exports");
    s.retrieval.embedder = EmbedderChoice::Hash;
    s.retrieval.index_poll_ms = 50;
    // Tests learn from clicks when they ask to, never on a timer.
    s.learning.learning_interval_secs = 0;
    // Nothing listens there: answers come from the extractive generator unless a
    // test starts a fake Ollama and points this at it.
    s.ollama.ollama_url = "http://127.0.0.1:9".to_owned();
    s
}

/// The PostgreSQL server under test, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("TENDERO_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    }
}

/// A fresh PostgreSQL database: (its URL, (admin URL, name)).
async fn fresh_postgres() -> (String, (String, String)) {
    let admin_url = postgres_url().expect("checked by the caller");
    let name = format!(
        "tendero_t_{}_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    );
    let conn = Database::connect(admin_url.as_str())
        .await
        .unwrap_or_else(|err| {
            panic!("TENDERO_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {err}")
        });
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("creating a test database");
    conn.close().await.ok();
    (with_database(&admin_url, &name), (admin_url, name))
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}

/// Spawns the app on a backend; `None` for PostgreSQL when it is not configured.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(
    backend: Backend,
    tweak: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(&dir);
    let mut pg_database = None;
    match backend {
        Backend::Sqlite => {}
        Backend::Postgres => {
            if postgres_url().is_none() {
                skip("postgres", "PostgreSQL", "TENDERO_TEST_DATABASE_URL");
                return None;
            }
            let (url, db) = fresh_postgres().await;
            settings.database.database_url = Some(url);
            pg_database = Some(db);
        }
    }
    tweak(&mut settings);
    Some(serve(settings, dir, pg_database, ANY_PORT).await)
}

/// Where a test server listens unless it restarts on its old address.
const ANY_PORT: &str = "127.0.0.1:0";

/// Starts the server on `settings` at `addr`, owning the data folder (and test
/// database).
async fn serve(
    settings: Settings,
    dir: TempDir,
    pg_database: Option<(String, String)>,
    addr: impl tokio::net::ToSocketAddrs,
) -> TestApp {
    let state = Services::build(settings).await.expect("building the app");
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut app = TestApp {
        addr,
        state,
        client,
        admin: String::new(),
        shutdown: Some(tx),
        server: Some(server),
        _dir: dir,
        pg_database,
    };
    app.admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `GET /api/search` with these query parameters (no token: the search is public).
    pub async fn search(&self, params: &[(&str, &str)]) -> Reply {
        let response = self
            .client
            .get(self.url("/api/search"))
            .query(params)
            .send()
            .await
            .expect("request sent");
        Self::read(response).await
    }

    /// A search as the customer at `address` sends it (`x-forwarded-for`: the test
    /// server must trust it), expected to succeed.
    pub async fn search_from(&self, address: &str, params: &[(&str, &str)]) -> Value {
        let response = self
            .client
            .get(self.url("/api/search"))
            .header("x-forwarded-for", address)
            .query(params)
            .send()
            .await
            .expect("request sent");
        Self::read(response).await.expect(200)
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::read(request.send().await.expect("request sent")).await
    }

    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Sends a GET with the path exactly as given (no client-side normalisation of
    /// dot segments) and returns the status and the body.
    pub async fn raw_get(&self, path: &str, token: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        let reply = String::from_utf8_lossy(&reply).into_owned();
        let status = reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = reply
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Signs in and returns the token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self
            .call(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        reply.expect(200)["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Creates a `vendedor` user and returns their token.
    pub async fn vendedor(&self) -> String {
        let email = "vendedor@tienda.test";
        tendero::auth::users::create(
            self.state.db(),
            email,
            "Vendedora",
            tendero::auth::Role::Vendedor,
            "clave-del-vendedor",
        )
        .await
        .expect("creating a vendedor");
        self.login(email, "clave-del-vendedor").await
    }

    /// The events of type `tipo`, oldest first, once the event log has written at least
    /// `count` of them (it writes in the background).
    pub async fn events(
        &self,
        tipo: &str,
        count: usize,
    ) -> Vec<tendero::db::entities::evento::Model> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        use tendero::db::entities::evento;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let rows = evento::Entity::find()
                .filter(evento::Column::Tipo.eq(tipo))
                .order_by_asc(evento::Column::Id)
                .all(self.state.db().conn())
                .await
                .unwrap();
            if rows.len() >= count {
                return rows;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{count} {tipo} events never written"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The id of the product with this SKU (`GET /api/productos?q=`).
    pub async fn product_id(&self, sku: &str) -> i64 {
        let page = self
            .get(&format!("/api/productos?q={sku}&limit=100"), &self.admin)
            .await
            .expect(200);
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["sku"] == sku)
            .unwrap_or_else(|| panic!("no product {sku}: {page}"))["id"]
            .as_i64()
            .unwrap()
    }

    /// A conversation as staff read it (`GET /api/conversaciones/{chat_id}`).
    pub async fn conversation(&self, chat_id: &str) -> Value {
        self.get(&format!("/api/conversaciones/{chat_id}"), &self.admin)
            .await
            .expect(200)
    }

    pub async fn new_cliente(&self, nombre: &str, email: &str) -> Value {
        self.post(
            "/api/clientes",
            &self.admin,
            json!({"nombre": nombre, "email": email}),
        )
        .await
        .expect(201)
    }

    pub async fn new_producto(&self, sku: &str, precio: &str, stock: i64) -> Value {
        self.post(
            "/api/productos",
            &self.admin,
            json!({"sku": sku, "nombre": format!("Producto {sku}"), "precio": precio, "stock": stock, "categoria": "ropa"}),
        )
        .await
        .expect(201)
    }

    /// The `total` of a list endpoint.
    pub async fn total(&self, path: &str) -> u64 {
        self.get(path, &self.admin).await.expect(200)["total"]
            .as_u64()
            .expect("total")
    }

    pub async fn stock(&self, producto_id: i64) -> i64 {
        self.get(&format!("/api/productos/{producto_id}"), &self.admin)
            .await
            .expect(200)["stock"]
            .as_i64()
            .unwrap()
    }

    /// Signals shutdown and waits for the server to return.
    /// Stops the server and hands over its data folder, which outlives the app (for
    /// restart scenarios).
    pub async fn stop_keeping_data(mut self) -> TempDir {
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            handle
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        dir
    }

    /// Stops the server and starts a new one on the same data and settings.
    pub async fn restart(self) -> TestApp {
        let stopped = self.stop_for_restart().await;
        serve(stopped.settings, stopped.dir, stopped.pg_database, ANY_PORT).await
    }

    /// Stops the server, keeping what starting it again on the same address needs
    /// (as after a deploy: clients of the old server reconnect to the new one).
    pub async fn stop_for_restart(mut self) -> Stopped {
        let settings = (**self.state.settings()).clone();
        let pg_database = self.pg_database.take();
        let addr = self.addr;
        let dir = self.stop_keeping_data().await;
        Stopped {
            settings,
            dir,
            pg_database,
            addr,
        }
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await.expect("server task"),
            None => Ok(()),
        }
    }
}

/// A stopped test server's data, settings and address.
pub struct Stopped {
    settings: Settings,
    dir: TempDir,
    pg_database: Option<(String, String)>,
    addr: SocketAddr,
}

impl Stopped {
    /// The data folder (a command run between the stop and the start uses it).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Starts the server again on the same address, data and settings.
    pub async fn start(self) -> TestApp {
        serve(self.settings, self.dir, self.pg_database, self.addr).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some((admin_url, name)) = self.pg_database.take() {
            // Drop runs inside the test's runtime: drop the database from a helper thread.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    if let Ok(conn) = Database::connect(admin_url.as_str()).await {
                        let _ = conn
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                        conn.close().await.ok();
                    }
                });
            })
            .join();
        }
    }
}
