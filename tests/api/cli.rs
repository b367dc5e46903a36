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
    let url = app.state.settings().database_url();
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
