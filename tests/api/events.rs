//! The event log through the real interfaces: searches and answers come with ids,
//! clicks on what they showed and ratings of answers are kept (`POST /api/eventos`),
//! bad events are refused and not stored, the log exports as JSON Lines, `/metrics`
//! counts its writes, and old events are deleted by the retention setting.

use std::time::{Duration, Instant};

use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tendero::db::entities::evento;

use crate::helpers::{Backend, Reply, TestApp, spawn_app_with};
use crate::on_every_backend;

on_every_backend!(
    clicks_and_ratings_on_what_was_shown_are_kept_and_bad_ones_refused,
    the_log_exports_is_counted_and_forgets_old_events,
    over_socket_io_clicks_and_ratings_are_checked_too
);

async fn demo_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |s| s.server.demo = true).await
}

/// `POST /api/eventos` without a token, as an app sends it.
async fn send(app: &TestApp, event: Value) -> Reply {
    app.call(Method::POST, "/api/eventos", None, Some(event))
        .await
}

/// The place (from 1) and the id of the first product among an answer's sources.
fn first_card(answer: &Value) -> (usize, i64) {
    answer["sources"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .find(|(_, s)| s["tipo"] == "producto")
        .map(|(i, s)| (i + 1, s["id"].as_i64().unwrap()))
        .unwrap_or_else(|| panic!("no product card: {answer}"))
}

async fn clicks_and_ratings_on_what_was_shown_are_kept_and_bad_ones_refused(backend: Backend) {
    let Some(app) = demo_app(backend).await else {
        return;
    };
    // A search comes with its id; a click on its second result is accepted at once,
    // before the search itself reaches the database.
    let found = app
        .search(&[("q", "portátil"), ("k", "5")])
        .await
        .expect(200);
    let busqueda_id = found["busqueda_id"].as_str().unwrap().to_owned();
    let shown: Vec<i64> = found["resultados"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["producto"]["id"].as_i64().unwrap())
        .collect();
    assert!(shown.len() >= 2, "{found}");
    let accepted = send(
        &app,
        json!({"tipo": "click", "busqueda_id": busqueda_id, "producto_id": shown[1], "posicion": 2}),
    )
    .await
    .expect(202);
    assert_eq!(accepted["aceptado"], true);

    // What was not shown, or not there, is refused with the field at fault.
    let refused = [
        (
            json!({"tipo": "click", "busqueda_id": busqueda_id, "producto_id": shown[1], "posicion": 1}),
            400,
            "validation_failed",
            Some("producto_id"),
        ),
        (
            json!({"tipo": "click", "busqueda_id": busqueda_id, "producto_id": shown[0], "posicion": 0}),
            400,
            "validation_failed",
            Some("posicion"),
        ),
        (
            json!({"tipo": "click", "busqueda_id": busqueda_id, "producto_id": shown[0], "posicion": 99}),
            400,
            "validation_failed",
            Some("posicion"),
        ),
        (
            json!({"tipo": "click", "busqueda_id": "no-es-un-id", "producto_id": shown[0], "posicion": 1}),
            400,
            "validation_failed",
            Some("busqueda_id"),
        ),
        (
            json!({"tipo": "click", "busqueda_id": uuid::Uuid::new_v4().to_string(),
                   "producto_id": shown[0], "posicion": 1}),
            404,
            "not_found",
            None,
        ),
        (
            json!({"tipo": "click", "producto_id": shown[0], "posicion": 1}),
            400,
            "validation_failed",
            Some("busqueda_id"),
        ),
        (
            json!({"tipo": "click", "busqueda_id": busqueda_id, "respuesta_id": 1,
                   "producto_id": shown[0], "posicion": 1}),
            400,
            "validation_failed",
            Some("busqueda_id"),
        ),
        (
            json!({"tipo": "compra", "producto_id": shown[0]}),
            422,
            "invalid_body",
            None,
        ),
        (
            json!({"tipo": "valoracion", "respuesta_id": 999_999, "util": true}),
            404,
            "not_found",
            None,
        ),
    ];
    for (event, status, code, field) in refused {
        let reply = send(&app, event.clone()).await;
        reply.expect_error(status, code);
        if let Some(field) = field {
            assert_eq!(
                reply.body["error"]["field"], field,
                "{event}: {}",
                reply.text
            );
        }
    }

    // An answer comes with its id (the extractive generator answers here); a click on
    // one of its cards and a rating of it are kept, with the conversation.
    let answer = app
        .call(
            Method::POST,
            "/api/query/text",
            None,
            Some(json!({"query": "¿Tienen portátiles Lenovo?"})),
        )
        .await
        .expect(200);
    let respuesta_id = answer["respuesta_id"].as_i64().expect("an answer's id");
    let chat_id = answer["chat_id"].as_str().unwrap().to_owned();
    let (place, product) = first_card(&answer);
    send(
        &app,
        json!({"tipo": "click", "respuesta_id": respuesta_id, "producto_id": product, "posicion": place}),
    )
    .await
    .expect(202);
    send(
        &app,
        json!({"tipo": "valoracion", "respuesta_id": respuesta_id, "util": true,
               "comentario": "  Muy claro  "}),
    )
    .await
    .expect(202);
    // A comment over 1000 characters is refused; a body over 8 KiB is too large.
    send(
        &app,
        json!({"tipo": "valoracion", "respuesta_id": respuesta_id, "util": false,
               "comentario": "a".repeat(1001)}),
    )
    .await
    .expect_error(400, "validation_failed");
    send(
        &app,
        json!({"tipo": "valoracion", "respuesta_id": respuesta_id, "util": false,
               "comentario": "a".repeat(9000)}),
    )
    .await
    .expect_error(413, "payload_too_large");

    // Stored: the search with what it showed, the answer with its cards, the two
    // clicks and the rating, and nothing that was refused.
    let searches = app.events("busqueda", 1).await;
    assert_eq!(searches[0].ref_id.as_deref(), Some(busqueda_id.as_str()));
    assert_eq!(searches[0].datos["productos"], json!(shown));
    let answers = app.events("respuesta", 1).await;
    assert_eq!(answers[0].ref_id, Some(respuesta_id.to_string()));
    assert_eq!(answers[0].datos["productos"][place - 1], product);
    let clicks = app.events("click_producto", 2).await;
    assert_eq!(clicks.len(), 2, "refused clicks are not stored");
    assert_eq!(clicks[0].ref_id.as_deref(), Some(busqueda_id.as_str()));
    assert_eq!(clicks[0].producto_id, Some(shown[1]));
    assert_eq!(clicks[0].datos["posicion"], 2);
    assert_eq!(clicks[0].datos["canal"], "rest");
    // The client is a salted hash, never the address.
    let client = clicks[0].datos["cliente"].as_str().unwrap();
    assert_eq!(client.len(), 24, "{client}");
    assert!(!clicks[0].datos.to_string().contains("127.0.0.1"));
    assert_eq!(clicks[1].ref_id, Some(respuesta_id.to_string()));
    assert_eq!(clicks[1].chat_id.as_deref(), Some(chat_id.as_str()));
    assert_eq!(clicks[1].datos["cliente"], client, "same client, same hash");
    let ratings = app.events("valoracion", 1).await;
    assert_eq!(ratings.len(), 1);
    assert_eq!(ratings[0].datos["util"], true);
    assert_eq!(ratings[0].datos["comentario"], "Muy claro");
    assert_eq!(ratings[0].chat_id.as_deref(), Some(chat_id.as_str()));

    // After a restart the search is no longer in memory: its clicks are checked
    // against the log.
    let app = app.restart().await;
    send(
        &app,
        json!({"tipo": "click", "busqueda_id": busqueda_id, "producto_id": shown[0], "posicion": 1}),
    )
    .await
    .expect(202);
    send(
        &app,
        json!({"tipo": "click", "busqueda_id": busqueda_id, "producto_id": shown[0], "posicion": 2}),
    )
    .await
    .expect_error(400, "validation_failed");
    app.events("click_producto", 3).await;
}

async fn the_log_exports_is_counted_and_forgets_old_events(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        s.server.demo = true;
        s.learning.events_retention_days = 30;
    })
    .await
    else {
        return;
    };
    for q in ["portátil", "monitor", "impresora"] {
        app.search(&[("q", q)]).await.expect(200);
    }
    let searches = app.events("busqueda", 3).await;

    // JSON Lines through the report route, one event per line, filtered by type.
    let export = app
        .call(
            Method::GET,
            "/api/exportar/eventos?formato=jsonl&tipo=busqueda",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(export.status, 200, "{}", export.text);
    let body = export.text;
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{body}");
    assert_eq!(lines[0]["tipo"], "busqueda");
    assert_eq!(lines[0]["datos"]["q"], "portátil");
    assert_eq!(lines[2]["ref_id"], searches[2].ref_id.clone().unwrap());
    app.get("/api/exportar/eventos?tipo=compra", &app.admin)
        .await
        .expect_error(400, "validation_failed");
    app.get("/api/exportar/clientes?tipo=busqueda", &app.admin)
        .await
        .expect_error(400, "validation_failed");
    app.call(Method::GET, "/api/exportar/eventos", None, None)
        .await
        .expect_error(401, "unauthorized");

    // `/metrics` counts what the log wrote.
    let metrics = app.call(Method::GET, "/metrics", None, None).await.text;
    let written: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tendero_events_total{outcome=\"written\"} "))
        .unwrap_or_else(|| panic!("no written events counter in {metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(written >= 3, "{written}");
    assert!(
        metrics.contains("tendero_events_total{outcome=\"dropped\"} 0"),
        "{metrics}"
    );

    // Events older than the retention are deleted (the check runs at start): two
    // searches are made 40 days old, and a restart leaves only the third.
    let db = app.state.db().conn();
    let old = chrono::Utc::now() - chrono::Duration::days(40);
    evento::Entity::update_many()
        .col_expr(
            evento::Column::CreatedAt,
            sea_orm::sea_query::Expr::value(old),
        )
        .filter(evento::Column::Id.is_in([searches[0].id, searches[1].id]))
        .exec(db)
        .await
        .unwrap();
    let app = app.restart().await;
    let db = app.state.db().conn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while evento::Entity::find()
        .filter(evento::Column::Tipo.eq("busqueda"))
        .count(db)
        .await
        .unwrap()
        > 1
    {
        assert!(Instant::now() < deadline, "old events were not deleted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = app.events("busqueda", 1).await;
    assert_eq!(left[0].id, searches[2].id);
}

/// The chat page's events: a click on a card of an answer and a rating, checked the
/// same way; a refused one is answered with an `error`.
async fn over_socket_io_clicks_and_ratings_are_checked_too(backend: Backend) {
    let Some(app) = demo_app(backend).await else {
        return;
    };
    let mut client = crate::socket_client::SocketClient::connect(&app.url(""), None).await;
    client.ask("¿Tienen portátiles Lenovo?", None).await;
    let answer = client.until_end().await.last;
    let respuesta_id = answer["respuesta_id"].as_i64().expect("an answer's id");
    let (place, product) = first_card(&answer);

    let refusals = [
        (
            "product_click",
            json!({"respuesta_id": respuesta_id, "producto_id": product, "posicion": place + 50}),
            "validation_failed",
        ),
        (
            "product_click",
            json!({"respuesta_id": respuesta_id + 1000, "producto_id": product, "posicion": place}),
            "not_found",
        ),
        (
            "product_click",
            json!({"chat_id": "x", "producto_id": product, "query": "portátil"}),
            "invalid_body",
        ),
        (
            "feedback",
            json!({"respuesta_id": respuesta_id, "util": "sí"}),
            "invalid_body",
        ),
    ];
    for (event, data, code) in refusals {
        client.emit(event, data.clone()).await;
        let (name, error) = client.next_event().await;
        assert_eq!(name, "error", "{event} {data}: {error}");
        assert_eq!(error["code"], code, "{event} {data}: {error}");
    }
    client
        .emit(
            "product_click",
            json!({"respuesta_id": respuesta_id, "producto_id": product, "posicion": place}),
        )
        .await;
    client
        .emit(
            "feedback",
            json!({"respuesta_id": respuesta_id, "util": false}),
        )
        .await;
    let clicks = app.events("click_producto", 1).await;
    assert_eq!(clicks[0].producto_id, Some(product));
    assert_eq!(clicks[0].datos["canal"], "socket");
    let ratings = app.events("valoracion", 1).await;
    assert_eq!(ratings[0].datos["util"], false);
    assert_eq!(
        clicks.len() + ratings.len(),
        2,
        "refused events are not stored"
    );
}
