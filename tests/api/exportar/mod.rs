//! Reports: round trips in every format, filters and columns, CSV quoting, Excel,
//! saved files, limits, and a client that leaves mid-export.

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::on_every_backend;

mod files;

on_every_backend!(round_trips, filters_columns_and_empty_results);

pub(super) const TRICKY: &[&str] = &[
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
        "id,cliente_id,cliente_nombre,cliente_email,estado,total,notas,direccion_envio,conversacion_id,busqueda_id,created_at,updated_at\r\n"
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
