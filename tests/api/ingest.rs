//! `tendero ingest` run as a user runs it, against a real server (started in this
//! process on a random port) sharing its SQLite file and LanceDB folder; and its
//! other name, `tendero-ingest`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::Value;
use tempfile::TempDir;
use tendero::config::{EmbedderChoice, Secret, Settings};
use tendero::db::entities::producto;
use tendero::retrieval::search::{Filters, Mode};
use tendero::retrieval::store::ChunkKind;
use tendero::server::{self, Services};

use crate::skip::skip;

const BIN: &str = env!("CARGO_BIN_EXE_tendero");

struct Server {
    state: Services,
    base: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    async fn start(dir: &Path, embedder: EmbedderChoice) -> Self {
        let mut settings = Settings::default();
        settings.server.addr = "127.0.0.1:0".parse().unwrap();
        settings.server.data_dir = dir.to_path_buf();
        settings.server.demo = false;
        settings.server.shutdown_grace_secs = 2;
        settings.auth.jwt_secret = Some(Secret::new("ingest-test-secret-ingest-test-secret-0"));
        settings.retrieval.embedder = embedder;
        settings.retrieval.embedder_model_dir = minilm_dir();
        settings.retrieval.index_poll_ms = 100;
        settings.limits.rate_limit_per_second = 100_000;
        settings.limits.rate_limit_burst = 100_000;
        let state = Services::build(settings).await.expect("server starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Self {
            state,
            base,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn search(&self, q: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}/api/search", self.base))
            .query(&[("q", q), ("modo", "bm25"), ("k", "50")])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn skus(&self, q: &str) -> Vec<String> {
        let (status, body) = self.search(q).await;
        assert_eq!(status, 200, "{body}");
        body["resultados"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["producto"]["sku"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Polls until `check` holds for the search results of `q`; panics after 5 s.
    async fn within_5s(&self, q: &str, check: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let skus = self.skus(q).await;
            if check(&skus) {
                return;
            }
            assert!(Instant::now() < deadline, "{q}: still {skus:?} after 5 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

fn minilm_dir() -> Option<PathBuf> {
    std::env::var_os("TENDERO_TEST_MINILM_DIR").map(PathBuf::from)
}

/// Runs `tendero ingest ARGS` on the data folder `dir`.
fn ingest(dir: &Path, embedder: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("ingest");
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TENDERO_DATA_DIR", dir)
        .env("TENDERO_EMBEDDER", embedder)
        .env("TENDERO_LOG_FORMAT", "pretty")
        .args(args);
    if let Some(model) = minilm_dir() {
        cmd.env("TENDERO_EMBEDDER_MODEL_DIR", model);
    }
    cmd.output().expect("tendero ingest runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

const HEADER: &str = "sku,nombre,descripcion,categoria,precio,stock,marca\n";

fn catalog(rows: &[&str]) -> String {
    let mut text = HEADER.to_owned();
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_good_bad_changed_and_pruned_files() {
    let dir = TempDir::new().unwrap();
    let server = Server::start(dir.path(), EmbedderChoice::Hash).await;
    let file = dir.path().join("productos.csv");
    let rows = [
        "T-1,Taladro percutor 20 V,Con dos baterías,ferretería,329900,12,Dewalt",
        "T-2,Martillo de uña,Mango de fibra de vidrio,ferretería,45900,30,Stanley",
        "T-3,Camión volqueta de juguete,Plástico resistente,juguetes,59900,8,Juguetón",
        "T-4,Sartén antiadherente 28 cm,Apta para inducción,cocina,89900,0,Imusa",
        "T-5,Lámpara de escritorio LED,Luz cálida y fría,hogar,\"1.299.900\",5,Philips",
    ];
    let mut with_bad = rows.to_vec();
    with_bad.insert(2, "T-6,Silla,Sin precio,muebles,gratis,3,X");
    with_bad.push("T-7,Mesa plegable,Negativa,muebles,99900,-2,X");
    std::fs::write(&file, catalog(&with_bad)).unwrap();

    // --strict stops at the first bad row and writes nothing.
    let out = ingest(
        dir.path(),
        "hash",
        &["productos", "productos.csv", "--strict"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("productos.csv:4: columna 5 (precio)"),
        "{}",
        stderr(&out)
    );
    let db = server.state.db().conn();
    assert_eq!(producto::Entity::find().count(db).await.unwrap(), 0);

    // Without --strict the bad rows are reported and skipped.
    let out = ingest(dir.path(), "hash", &["productos", "productos.csv"]);
    let err = stderr(&out);
    let summary = ok(out);
    assert!(
        summary.contains("5 insertados, 0 actualizados, 0 sin cambios, 0 eliminados, 2 rechazados"),
        "{summary}"
    );
    assert!(summary.contains("5 embebidos"), "{summary}");
    assert!(err.contains("productos.csv:4: columna 5 (precio)"), "{err}");
    assert!(err.contains("productos.csv:8: columna 6 (stock)"), "{err}");
    let lamp = producto::Entity::find()
        .filter(producto::Column::Sku.eq("T-5"))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lamp.precio_centavos, 129_990_000);
    assert_eq!(lamp.atributos["marca"], "Philips");

    // The running server serves the new catalog within 5 s, no restart.
    server.within_5s("camion", |s| s == ["T-3"]).await;

    // A second run changes nothing.
    let summary = ok(ingest(dir.path(), "hash", &["productos", "productos.csv"]));
    assert!(
        summary.contains("0 insertados, 0 actualizados, 5 sin cambios"),
        "{summary}"
    );
    assert!(
        summary.contains("0 embebidos, 0 con datos nuevos sin re-embeber, 0 quitados"),
        "{summary}"
    );

    // A price change keeps the vector; a description change re-embeds.
    let mut changed = rows.to_vec();
    changed[1] = "T-2,Martillo de uña,Mango de fibra de vidrio,ferretería,49900,30,Stanley";
    changed[3] = "T-4,Sartén antiadherente 28 cm,Con tapa de vidrio templado,cocina,89900,0,Imusa";
    std::fs::write(&file, catalog(&changed)).unwrap();
    let summary = ok(ingest(dir.path(), "hash", &["productos", "productos.csv"]));
    assert!(
        summary.contains("0 insertados, 2 actualizados, 3 sin cambios"),
        "{summary}"
    );
    assert!(
        summary.contains("1 embebidos, 1 con datos nuevos sin re-embeber"),
        "{summary}"
    );
    server
        .within_5s("tapa vidrio templado", |s| {
            s.first().map(String::as_str) == Some("T-4")
        })
        .await;

    // --prune removes what the file no longer has.
    std::fs::write(&file, catalog(&changed[..4])).unwrap();
    let summary = ok(ingest(
        dir.path(),
        "hash",
        &["productos", "productos.csv", "--prune"],
    ));
    assert!(summary.contains("1 eliminados"), "{summary}");
    assert!(summary.contains("1 quitados"), "{summary}");
    server
        .within_5s("lampara escritorio", |s| s.is_empty())
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_json_jsonl_and_document_folders() {
    let dir = TempDir::new().unwrap();
    let server = Server::start(dir.path(), EmbedderChoice::Hash).await;
    std::fs::write(
        dir.path().join("a.json"),
        r#"[
  {"sku": "J-1", "nombre": "Termo de acero 1 L", "precio": 79900, "stock": 4, "color": "negro"},
  {"sku": "J-2", "nombre": "Lonchera térmica", "precio": "45900", "stock": 2}
]"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.jsonl"),
        "{\"sku\": \"L-1\", \"nombre\": \"Cuaderno argollado\", \"precio\": 12900}\n\
         {\"sku\": \"L-2\", \"nombre\": \"Esfero\", \"precio\": \"no sé\"}\n",
    )
    .unwrap();
    let summary = ok(ingest(dir.path(), "hash", &["productos", "a.json"]));
    assert!(summary.contains("2 insertados"), "{summary}");
    let out = ingest(dir.path(), "hash", &["productos", "b.jsonl", "--json"]);
    let report: Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(report["inserted"], 1);
    assert_eq!(report["rejected"], 1);
    assert_eq!(report["errors"][0]["line"], 2);
    assert_eq!(report["errors"][0]["column"], "precio");
    server
        .within_5s("termo acero", |s| {
            s.first().map(String::as_str) == Some("J-1")
        })
        .await;

    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("politicas")).unwrap();
    std::fs::write(
        docs.join("envios.md"),
        "# Envíos\n\n## Costos\n\nEl envío es gratis desde 150.000 pesos.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("politicas/devoluciones.txt"),
        "Tienes 30 días para devolver un producto sin usar.",
    )
    .unwrap();
    std::fs::write(docs.join("imagen.png"), [0u8, 1, 2]).unwrap();
    let summary = ok(ingest(dir.path(), "hash", &["docs", "docs"]));
    assert!(summary.contains("2 insertados"), "{summary}");
    let index = server.state.index();
    let filters = Filters {
        kind: Some(ChunkKind::Documento),
        ..Filters::default()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = index
            .search("devolver producto", Mode::Bm25, &filters, 3)
            .await
            .unwrap();
        if !found.hits.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "documents never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    server.stop().await;
}

/// While a large ingest runs, every search answers 200 with the old or the new catalog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searching_during_an_ingest_never_fails() {
    let dir = TempDir::new().unwrap();
    let server = Server::start(dir.path(), EmbedderChoice::Hash).await;
    let old: Vec<String> = (0..50)
        .map(|i| format!("OLD-{i},Linterna recargable modelo {i},,hogar,19900,5,X"))
        .collect();
    std::fs::write(
        dir.path().join("old.csv"),
        catalog(&old.iter().map(String::as_str).collect::<Vec<_>>()),
    )
    .unwrap();
    ok(ingest(dir.path(), "hash", &["productos", "old.csv"]));
    server.within_5s("linterna", |s| s.len() == 50).await;

    let new: Vec<String> = (0..3000)
        .map(|i| format!("NEW-{i},Linterna táctica serie {i},Aluminio,hogar,29900,5,Y"))
        .collect();
    std::fs::write(
        dir.path().join("new.csv"),
        catalog(&new.iter().map(String::as_str).collect::<Vec<_>>()),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TENDERO_DATA_DIR", dir.path())
        .env("TENDERO_EMBEDDER", "hash")
        .args(["ingest", "productos", "new.csv", "--prune"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut searches = 0;
    while child.try_wait().unwrap().is_none() {
        let skus = server.skus("linterna").await;
        assert!(
            !skus.is_empty(),
            "a search during the ingest came back empty"
        );
        searches += 1;
    }
    assert!(child.wait().unwrap().success());
    assert!(searches > 0);
    server
        .within_5s("linterna", |s| {
            !s.is_empty() && s.iter().all(|sku| sku.starts_with("NEW-"))
        })
        .await;
    server.stop().await;
}

/// An index built by one embedder is rebuilt, never mixed, when another one starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_embedder_rebuilds_the_index() {
    if minilm_dir().is_none() {
        skip("minilm", "the MiniLM model", "TENDERO_TEST_MINILM_DIR");
        return;
    }
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("p.csv"),
        catalog(&[
            "E-1,Audífonos inalámbricos con cancelación de ruido,,tecnología,459900,3,Sony",
            "E-2,Olla a presión 6 litros,,cocina,219900,4,Imusa",
        ]),
    )
    .unwrap();
    let summary = ok(ingest(dir.path(), "hash", &["productos", "p.csv"]));
    assert!(summary.contains("2 embebidos"), "{summary}");
    // The server starts on MiniLM: the hash index is dropped and rebuilt from the database.
    let server = Server::start(dir.path(), EmbedderChoice::Minilm).await;
    let status = server.state.index().status();
    assert!(status.embedder.starts_with("minilm:"), "{status:?}");
    assert_eq!(status.chunks, 2);
    let tables: Vec<String> = std::fs::read_dir(dir.path().join("lancedb"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(tables.len(), 1, "{tables:?}");
    assert!(tables[0].starts_with("chunks_minilm"), "{tables:?}");
    // Meaning, not spelling: "auriculares" shares no word with "Audífonos".
    let response = server
        .client
        .get(format!("{}/api/search", server.base))
        .query(&[
            ("q", "auriculares bluetooth"),
            ("modo", "vector"),
            ("k", "1"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["resultados"][0]["producto"]["sku"], "E-1", "{body}");
    server.stop().await;
}

/// `tendero-ingest` (a link to the `tendero` binary under that name, as `make build`
/// and the Docker image install it) is `tendero ingest`.
#[test]
fn tendero_ingest_is_the_ingest_command() {
    let dir = TempDir::new().unwrap();
    let alias = dir.path().join("tendero-ingest");
    std::os::unix::fs::symlink(BIN, &alias).unwrap();
    std::fs::write(
        dir.path().join("p.csv"),
        catalog(&["A-1,Taladro percutor 20 V,,ferretería,329900,12,Dewalt"]),
    )
    .unwrap();
    let out = Command::new(&alias)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TENDERO_DATA_DIR", dir.path())
        .env("TENDERO_EMBEDDER", "hash")
        .env("TENDERO_LOG_FORMAT", "pretty")
        .args(["productos", "p.csv", "--json"])
        .output()
        .expect("tendero-ingest runs");
    let report: Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(report["inserted"], 1);
}
