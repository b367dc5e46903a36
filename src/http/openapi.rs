//! The OpenAPI document at `/openapi.json` and a self-contained docs page at `/docs`.
//!
//! The page is plain HTML and JavaScript shipped in the binary: no assets are
//! fetched at build time or from a CDN at run time.

use axum::Json;
use axum::response::Html;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    analitica, aprendizaje, auth, clientes, conversaciones, eventos, exportar, pedidos, productos,
    query, recomendaciones, search, voice,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tendero API",
        description = "Tendero API: public product search and sales-agent answers; for staff, customers, products, \
                       orders, reports and auth. \
                       Errors are always {\"error\": {\"code\", \"message\"}}."
    ),
    paths(
        auth::login, auth::me,
        clientes::list, clientes::search, clientes::get, clientes::create, clientes::update,
        clientes::delete,
        productos::list, productos::get, productos::create, productos::update, productos::delete,
        pedidos::list, pedidos::get, pedidos::create, pedidos::update, pedidos::delete,
        exportar::export, exportar::list_files, exportar::download_file,
        search::search, eventos::create,
        query::text, voice::voice, conversaciones::list, conversaciones::get,
        recomendaciones::similar, recomendaciones::complements, recomendaciones::for_customer,
        recomendaciones::batch, recomendaciones::status, recomendaciones::train,
        aprendizaje::status, aprendizaje::learn,
        analitica::serie, analitica::consultas, analitica::productos, analitica::valoraciones,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sign-in for staff (JWT)"),
        (name = "clientes", description = "Customers"),
        (name = "productos", description = "Catalog"),
        (name = "pedidos", description = "Orders"),
        (name = "exportar", description = "Reports: CSV, JSON and JSON Lines"),
        (name = "búsqueda", description = "Public product search (hybrid: vectors + BM25)"),
        (name = "agente", description = "The sales agent: typed and spoken questions answered \
                                          (JSON or SSE; also over Socket.IO) and, for staff, the \
                                          conversations"),
        (name = "eventos", description = "Clicks on the products a search or an answer showed, \
                                          and ratings of answers (public)"),
        (name = "recomendaciones", description = "Similar and complementary products (public); \
                                                  for staff, a customer's recommendations, batches, \
                                                  the models' state and training"),
        (name = "aprendizaje", description = "For staff: the ranking learned from the clicks on \
                                              searches, and a learning now"),
        (name = "analitica", description = "For staff: searches, searches without results or \
                                            clicks, click-through, conversion to orders and \
                                            revenue, ratings, per day or week"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `GET /openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// `GET /docs`.
pub async fn docs_page() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
