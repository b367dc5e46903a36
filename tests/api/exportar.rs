//! Reports: round trips in every format, filters and columns, CSV quoting, Excel,
//! saved files, limits, and a client that leaves mid-export.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Method;
use sea_orm::{EntityTrait, Set};
use serde_json::{Value, json};
use tendero::db::entities::producto;

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};
use crate::on_every_backend;

on_every_backend!(
    round_trips,
    filters_columns_and_empty_results,
    saved_reports,
    client_leaving_stops_the_export
);

const TRICKY: &[&str] = &[
    "Coma, punto y \"comillas\"",
    "Dos\nlíneas y \r retorno",
    "Emoji 🎉 y ñandú",
    "=HYPERLINK(\"http://x\")",
    "+57 300",
    "-menos",
    "@arroba",
    "\tTabulado",
];

async fn seed(app: &TestApp) {
    for (i, text) in TRICKY.iter().enumerate() {
        let cliente = app
            .post("/api/clientes", &app.admin, json!({"nombre": format!("Cliente {i}"), "email": format!("c{i}@correo.co"), "notas": text, "ciudad": "Cali"}))
            .await
            .expect(201);
        app.post(
            "/api/productos",
            &app.admin,
            json!({"sku": format!("EXP-{i}"), "nombre": format!("Artículo {i}, \"especial\""), "descripcion": text, "precio": format!("{}.{:02}", 1000 + i, i), "stock": 50,
                   "categoria": if i % 2 == 0 { "ropa" } else { "hogar" }, "atributos": {"nota": text}}),
        )
        .await
        .expect(201);
        app.post("/api/pedidos", &app.admin, json!({"cliente_id": cliente["id"], "notas": text,
                "items": [{"sku": format!("EXP-{i}"), "cantidad": 2}, {"sku": "EXP-0", "cantidad": 1}]}))
            .await
            .expect(201);
    }
}

async fn download(app: &TestApp, path: &str) -> (reqwest::header::HeaderMap, String) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let headers = response.headers().clone();
    (headers, response.text().await.unwrap())
}

/// Parses a CSV export into JSON objects of strings, undoing formula defusing.
fn parse_csv(text: &str, separator: u8) -> Vec<Value> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            let mut row = serde_json::Map::new();
            for (name, value) in headers.iter().zip(record.iter()) {
                let defused = value
                    .strip_prefix('\'')
                    .filter(|v| v.starts_with(['=', '+', '-', '@', '\t', '\r']));
                row.insert(
                    name.to_owned(),
                    Value::String(defused.unwrap_or(value).to_owned()),
                );
            }
            Value::Object(row)
        })
        .collect()
}

/// A JSON value as the CSV export writes it.
fn as_csv_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What the API says the database holds, with the export's columns.
async fn from_api(app: &TestApp, entity: &str) -> Vec<Value> {
    let list = app
        .get(&format!("/api/{entity}?limit=100"), &app.admin)
        .await
        .expect(200);
    let mut items = list["items"].as_array().unwrap().clone();
    items.sort_by_key(|i| i["id"].as_i64());
    if entity == "pedidos" {
        for item in &mut items {
            let cliente = app
                .get(&format!("/api/clientes/{}", item["cliente_id"]), &app.admin)
                .await
                .expect(200);
            let object = item.as_object_mut().unwrap();
            object.remove("items");
            object.insert("cliente_nombre".into(), cliente["nombre"].clone());
            object.insert("cliente_email".into(), cliente["email"].clone());
        }
    }
    items
}

async fn round_trips(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    seed(&app).await;
    for entity in ["clientes", "productos", "pedidos"] {
        let expected = from_api(&app, entity).await;
        assert_eq!(expected.len(), TRICKY.len());

        let (headers, json_text) =
            download(&app, &format!("/api/exportar/{entity}?formato=json")).await;
        assert_eq!(headers["content-type"], "application/json");
        let exported: Vec<Value> = serde_json::from_str(&json_text).unwrap();
        assert_eq!(exported, expected, "{entity} as JSON");

        let (headers, lines) =
            download(&app, &format!("/api/exportar/{entity}?formato=jsonl")).await;
        assert_eq!(headers["content-type"], "application/x-ndjson");
        assert_eq!(parse_json_lines(&lines), expected, "{entity} as JSON Lines");

        let (headers, csv_text) = download(&app, &format!("/api/exportar/{entity}")).await;
        assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert_eq!(
            disposition,
            format!(
                "attachment; filename=\"{entity}-{}.csv\"",
                Utc::now().format("%Y-%m-%d")
            )
        );
        let rows = parse_csv(&csv_text, b',');
        assert_eq!(rows.len(), expected.len());
        for (row, want) in rows.iter().zip(&expected) {
            for (column, value) in want.as_object().unwrap() {
                assert_eq!(
                    row[column],
                    Value::String(as_csv_text(value)),
                    "{entity}.{column}"
                );
            }
        }
    }
    // Formula-like text is defused in CSV, and only there.
    let (_, csv_text) = download(&app, "/api/exportar/clientes?columnas=notas").await;
    assert!(
        csv_text.contains("'=HYPERLINK(\"\"http://x\"\")"),
        "{csv_text}"
    );
    assert!(
        csv_text.contains("'+57 300")
            && csv_text.contains("'-menos")
            && csv_text.contains("'@arroba")
    );
    assert!(csv_text.contains("\"Dos\nlíneas y \r retorno\""));

    // One row per order line.
    let (_, lines) = download(&app, "/api/exportar/pedidos?detalle=lineas&formato=jsonl").await;
    let lines = parse_json_lines(&lines);
    assert_eq!(
        lines.len(),
        TRICKY.len() * 2 - 1,
        "order 0 names EXP-0 twice: one merged line"
    );
    let pedidos = app
        .get("/api/pedidos?limit=100", &app.admin)
        .await
        .expect(200);
    for pedido in pedidos["items"].as_array().unwrap() {
        for item in pedido["items"].as_array().unwrap() {
            let line = lines
                .iter()
                .find(|l| l["linea_id"] == item["id"])
                .expect("line exported");
            for (column, key) in [
                ("pedido_id", "id"),
                ("cliente_id", "cliente_id"),
                ("estado", "estado"),
                ("fecha", "created_at"),
            ] {
                assert_eq!(line[column], pedido[key]);
            }
            for key in [
                "producto_id",
                "sku",
                "nombre",
                "cantidad",
                "precio_unitario",
                "subtotal",
            ] {
                assert_eq!(line[key], item[key]);
            }
        }
    }

    // Excel flavour: BOM, semicolons, decimal commas (read as bytes: a text decoder
    // would strip the BOM).
    let bytes = app
        .client
        .get(app.url("/api/exportar/productos?excel=true&columnas=sku,precio"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let excel = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(excel.starts_with("\u{feff}sku;precio\r\n"), "{excel:?}");
    let rows = parse_csv(excel.trim_start_matches('\u{feff}'), b';');
    assert_eq!(rows[1]["precio"], "1001,01");
}

async fn filters_columns_and_empty_results(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    seed(&app).await;
    let count = |text: &str| parse_json_lines(text).len();
    let jsonl = |query: &str| {
        let path = format!("/api/exportar/{query}&formato=jsonl");
        let app = &app;
        async move { download(app, &path).await.1 }
    };
    assert_eq!(count(&jsonl("productos?categoria=ropa").await), 4);
    assert_eq!(
        count(&jsonl("pedidos?estado=pendiente").await),
        TRICKY.len()
    );
    assert_eq!(count(&jsonl("pedidos?estado=entregado").await), 0);
    let first = app
        .get("/api/clientes?limit=1", &app.admin)
        .await
        .expect(200)["items"][0]
        .clone();
    assert_eq!(
        count(&jsonl(&format!("pedidos?cliente_id={}", first["id"])).await),
        1
    );
    app.patch(
        &format!("/api/clientes/{}", first["id"]),
        &app.admin,
        json!({"activo": false}),
    )
    .await
    .expect(200);
    assert_eq!(count(&jsonl("clientes?activo=false").await), 1);

    // Date edges: a date means the whole day; an instant is inclusive.
    let today = Utc::now().date_naive();
    assert_eq!(
        count(&jsonl(&format!("clientes?desde={today}&hasta={today}")).await),
        TRICKY.len()
    );
    assert_eq!(
        count(&jsonl(&format!("clientes?desde={}", today.succ_opt().unwrap())).await),
        0
    );
    let created = first["created_at"].as_str().unwrap();
    let encoded = created.replace('+', "%2B");
    assert_eq!(count(&jsonl(&format!("clientes?hasta={encoded}")).await), 1);
    assert_eq!(
        count(&jsonl(&format!("clientes?desde={encoded}")).await),
        TRICKY.len()
    );

    // Chosen columns, in the chosen order.
    let (_, text) = download(&app, "/api/exportar/clientes?columnas=email,id").await;
    assert!(text.starts_with("email,id\r\nc0@correo.co,"), "{text}");
    let (_, text) = download(&app, "/api/exportar/productos?formato=json&columnas=sku").await;
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(rows[0], json!({"sku": "EXP-0"}));

    // Empty results are still well-formed.
    let none = "?desde=2001-01-01&hasta=2001-01-02";
    assert_eq!(
        download(&app, &format!("/api/exportar/pedidos{none}"))
            .await
            .1,
        "id,cliente_id,cliente_nombre,cliente_email,estado,total,notas,direccion_envio,conversacion_id,created_at,updated_at\r\n"
    );
    assert_eq!(
        download(&app, &format!("/api/exportar/pedidos{none}&formato=json"))
            .await
            .1,
        "[]\n"
    );
    assert_eq!(
        download(&app, &format!("/api/exportar/pedidos{none}&formato=jsonl"))
            .await
            .1,
        ""
    );

    for (query, field) in [
        ("clientes?columnas=id,clave", "columnas"),
        ("clientes?columnas=id,id", "columnas"),
        ("clientes?estado=pendiente", "estado"),
        ("productos?cliente_id=1", "cliente_id"),
        ("pedidos?activo=true", "activo"),
        ("clientes?detalle=lineas", "detalle"),
        ("pedidos?formato=xlsx", "formato"),
        ("pedidos?formato=json&excel=true", "excel"),
        ("pedidos?desde=ayer", "desde"),
        ("usuarios?formato=csv", "entidad"),
    ] {
        let reply = app.get(&format!("/api/exportar/{query}"), &app.admin).await;
        reply.expect_error(400, "validation_failed");
        assert_eq!(reply.body["error"]["field"], field, "{query}");
    }
    app.get("/api/exportar/pedidos?estado=perdido", &app.admin)
        .await
        .expect_error(400, "invalid_query");
    app.call(Method::GET, "/api/exportar/clientes", None, None)
        .await
        .expect_error(401, "unauthorized");
    let vendedor = app.vendedor().await;
    assert_eq!(
        app.get("/api/exportar/clientes?formato=jsonl", &vendedor)
            .await
            .status,
        200
    );
}

async fn saved_reports(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    seed(&app).await;
    assert_eq!(
        app.get("/api/exportar/archivos", &app.admin)
            .await
            .expect(200),
        json!([])
    );
    let response = app
        .client
        .get(app.url("/api/exportar/pedidos?guardar=true"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let streamed = response.text().await.unwrap();

    // The file is renamed into place once the stream ends; poll for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let listed = app
            .get("/api/exportar/archivos", &app.admin)
            .await
            .expect(200);
        if listed.as_array().is_some_and(|l| !l.is_empty()) {
            break listed;
        }
        assert!(Instant::now() < deadline, "saved report never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let name = listed[0]["nombre"].as_str().unwrap();
    assert!(
        name.starts_with("pedidos-") && name.ends_with(".csv"),
        "{name}"
    );
    assert_eq!(
        listed[0]["bytes"].as_u64().unwrap() as usize,
        streamed.len()
    );
    let (headers, saved) = download(&app, &format!("/api/exportar/archivos/{name}")).await;
    assert_eq!(saved, streamed);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");

    let dir = app.state.settings().exports_dir.clone();
    std::fs::write(dir.join(".pedidos-x.csv.part"), "half").unwrap();
    std::fs::write(dir.parent().unwrap().join("secreto.csv"), "no").unwrap();
    assert_eq!(
        app.get("/api/exportar/archivos", &app.admin)
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for bad in [
        "..%2Fsecreto.csv",
        "%2E%2E%2Fsecreto.csv",
        ".pedidos-x.csv.part",
        "%2E%2E",
        "%2Fetc%2Fpasswd",
        "a%00.csv",
    ] {
        let (status, body) = app
            .raw_get(&format!("/api/exportar/archivos/{bad}"), &app.admin)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("validation_failed"), "{bad}: {body}");
    }
    for bad in ["../secreto.csv", "../../secreto.csv", "./../secreto.csv"] {
        let (status, body) = app
            .raw_get(&format!("/api/exportar/archivos/{bad}"), &app.admin)
            .await;
        assert_eq!(status, 404, "{bad}: {body}");
    }
    app.get("/api/exportar/archivos/otro.csv", &app.admin)
        .await
        .expect_error(404, "not_found");
}

async fn client_leaving_stops_the_export(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let now = Utc::now();
    let rows: Vec<producto::ActiveModel> = (0..30_000)
        .map(|i| producto::ActiveModel {
            sku: Set(format!("BULK-{i:06}")),
            nombre: Set(format!(
                "Producto masivo número {i} con un nombre largo para ocupar bytes"
            )),
            descripcion: Set(Some("Descripción de relleno ".repeat(8))),
            categoria: Set("masivo".into()),
            precio_centavos: Set(123_456),
            stock: Set(5),
            atributos: Set(json!({"lote": i})),
            activo: Set(true),
            eliminado_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(500) {
        producto::Entity::insert_many(chunk.to_vec())
            .exec(app.state.db().conn())
            .await
            .unwrap();
    }

    let mut response = app
        .client
        .get(app.url("/api/exportar/productos?formato=jsonl&guardar=true"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-export-rows"], "30000");
    let first = response.chunk().await.unwrap().expect("some bytes");
    assert!(!first.is_empty());
    drop(response);

    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let metrics = app.call(Method::GET, "/metrics", None, None).await.text;
        if metrics.contains(r#"tendero_exports_total{report="productos",outcome="cancelled"} 1"#) {
            break metrics;
        }
        assert!(
            !metrics.contains(r#"outcome="completed""#),
            "the export ran to the end although the client left"
        );
        assert!(
            Instant::now() < deadline,
            "export never noticed the client left:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(metrics.contains("tendero_exports_running 0"), "{metrics}");
    let written: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"tendero_export_rows_total{report="productos"} "#))
        .expect("rows counter")
        .parse()
        .unwrap();
    assert!(
        written < 30_000,
        "{written} rows written for a client that left"
    );
    // Nothing half-written was left behind or listed.
    assert_eq!(
        app.get("/api/exportar/archivos", &app.admin)
            .await
            .expect(200),
        json!([])
    );
    let dir = &app.state.settings().exports_dir;
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn exports_over_the_cap_are_refused_before_starting() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.export_max_rows = 3)
        .await
        .unwrap();
    seed(&app).await;
    let reply = app.get("/api/exportar/clientes", &app.admin).await;
    reply.expect_error(422, "export_too_large");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&TRICKY.len().to_string())
    );
    assert_eq!(
        app.get(
            "/api/exportar/pedidos?cliente_id=1&formato=jsonl",
            &app.admin
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn exports_have_their_own_rate_limit() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.export_rate_limit_per_minute = 1;
        s.export_rate_limit_burst = 2;
    })
    .await
    .unwrap();
    for _ in 0..2 {
        assert_eq!(
            app.get("/api/exportar/clientes", &app.admin).await.status,
            200
        );
    }
    app.get("/api/exportar/clientes", &app.admin)
        .await
        .expect_error(429, "rate_limited");
    app.get("/api/clientes", &app.admin).await.expect(200);
}
