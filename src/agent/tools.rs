//! The tools the model may call while it answers: `buscar_productos`,
//! `consultar_stock`, `recomendar` and `crear_pedido`. Each answers with JSON the model reads;
//! a refusal (unknown product, not enough stock, bad email) is an answer too, so
//! the model can tell the customer. Products a tool returns become numbered
//! sources, so the answer can cite them and the price guard knows their prices.

use ollama_rs::generation::tools::{ToolCall, ToolInfo};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::db::entities::{cliente, producto};
use crate::retrieval::search::{Filters, Mode};
use crate::retrieval::store::ChunkKind;
use crate::shop::ShopError;
use crate::shop::clientes::NuevoCliente;
use crate::shop::pedidos::{LineaSolicitada, NuevoPedido, Pedido};
use crate::shop::types::{Email, pesos};

use super::Agent;
use super::context::Sources;
use super::suggest::{self, Wish};

/// Products `buscar_productos` returns at most.
const MAX_SEARCH_RESULTS: usize = 10;

/// The tool definitions sent to the model.
pub fn definitions() -> Vec<ToolInfo> {
    let tools = json!([
        {
            "type": "function",
            "function": {
                "name": "buscar_productos",
                "description": "Busca productos del catálogo con su precio y existencias vigentes.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "consulta": {"type": "string", "description": "Qué busca el cliente"},
                        "categoria": {"type": "string", "description": "Categoría exacta, opcional"},
                        "precio_max": {"type": "number", "description": "Precio máximo en pesos, opcional"},
                        "solo_en_stock": {"type": "boolean", "description": "Solo productos con existencias"}
                    },
                    "required": ["consulta"]
                }
            }
        },
        {
            "type": "function",
            "function": {
                "name": "consultar_stock",
                "description": "Precio y existencias vigentes de un producto por su SKU.",
                "parameters": {
                    "type": "object",
                    "properties": {"sku": {"type": "string"}},
                    "required": ["sku"]
                }
            }
        },
        {
            "type": "function",
            "function": {
                "name": "recomendar",
                "description": "Recomienda productos con su precio y existencias vigentes: parecidos a uno, que combinan con uno (complementos), o para el cliente según lo conversado.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "tipo": {"type": "string", "enum": ["parecidos", "complementos", "para_ti"]},
                        "sku": {"type": "string", "description": "SKU del producto de referencia (parecidos y complementos)"},
                        "precio_max": {"type": "number", "description": "Precio máximo en pesos, opcional"}
                    },
                    "required": ["tipo"]
                }
            }
        },
        {
            "type": "function",
            "function": {
                "name": "crear_pedido",
                "description": "Crea un pedido pendiente para el cliente. Úsala solo cuando el cliente confirmó su nombre, su correo, los productos y las cantidades.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "nombre": {"type": "string", "description": "Nombre del cliente"},
                        "email": {"type": "string", "description": "Correo del cliente"},
                        "items": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "sku": {"type": "string"},
                                    "cantidad": {"type": "integer", "minimum": 1}
                                },
                                "required": ["sku", "cantidad"]
                            }
                        },
                        "direccion_envio": {"type": "string"},
                        "notas": {"type": "string"}
                    },
                    "required": ["nombre", "email", "items"]
                }
            }
        }
    ]);
    serde_json::from_value(tools).expect("the tool definitions are valid")
}

/// What the tools did during one answer.
pub struct Toolbox<'a> {
    agent: &'a Agent,
    chat_id: &'a str,
    /// The order taken in this answer (one at most).
    pub pedido: Option<Pedido>,
}

impl<'a> Toolbox<'a> {
    pub fn new(agent: &'a Agent, chat_id: &'a str) -> Self {
        Self {
            agent,
            chat_id,
            pedido: None,
        }
    }

    /// Runs one call and returns what the model reads back.
    pub async fn call(&mut self, sources: &mut Sources, call: &ToolCall) -> String {
        let args = &call.function.arguments;
        // Some models send the arguments as a JSON string.
        let parsed;
        let args = match args {
            Value::String(raw) => {
                parsed = serde_json::from_str(raw).unwrap_or(Value::Null);
                &parsed
            }
            other => other,
        };
        let result = match call.function.name.as_str() {
            "buscar_productos" => self.search(sources, args).await,
            "consultar_stock" => self.stock(sources, args).await,
            "recomendar" => self.recommend(sources, args).await,
            "crear_pedido" => self.order(sources, args).await,
            other => Err(format!("no existe la herramienta {other}")),
        };
        tracing::info!(tool = %call.function.name, ok = result.is_ok(), "tool call");
        match result {
            Ok(value) => value.to_string(),
            Err(message) => json!({ "error": message }).to_string(),
        }
    }

    async fn search(&mut self, sources: &mut Sources, args: &Value) -> Result<Value, String> {
        let consulta = text_arg(args, "consulta").ok_or("falta la consulta")?;
        let filters = Filters {
            kind: Some(ChunkKind::Producto),
            categoria: text_arg(args, "categoria"),
            precio_min: None,
            precio_max: number_arg(args, "precio_max").map(|p| (p * 100.0).round() as i64),
            en_stock: args
                .get("solo_en_stock")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            ..Filters::default()
        };
        let (_, hits) = self
            .agent
            .search
            .products(&consulta, Mode::Hybrid, &filters, MAX_SEARCH_RESULTS)
            .await
            .map_err(|err| {
                tracing::error!(error = %format!("{err:#}"), "tool search failed");
                "la búsqueda falló".to_owned()
            })?;
        let products: Vec<Value> = hits
            .iter()
            .map(|hit| product_json(sources.product(&hit.producto), &hit.producto))
            .collect();
        Ok(json!({ "productos": products }))
    }

    async fn recommend(&mut self, sources: &mut Sources, args: &Value) -> Result<Value, String> {
        let tipo =
            text_arg(args, "tipo").ok_or("falta el tipo: parecidos, complementos o para_ti")?;
        let wish = match tipo.as_str() {
            "parecidos" => Wish::Similar { cheaper: false },
            "complementos" => Wish::Complements,
            "para_ti" => Wish::ForYou,
            other => {
                return Err(format!(
                    "tipo desconocido: {other}; usa parecidos, complementos o para_ti"
                ));
            }
        };
        let precio_max = number_arg(args, "precio_max").map(|p| (p * 100.0).round() as i64);
        let reference = match text_arg(args, "sku") {
            Some(sku) => {
                let product = self.product_by_sku(&sku).await?;
                let mut reference = Sources::default();
                reference.product(&product);
                reference
            }
            None if wish == Wish::ForYou => sources.clone(),
            None => return Err("falta el SKU del producto de referencia".to_owned()),
        };
        let failed = |err: anyhow::Error| {
            tracing::error!(error = %format!("{err:#}"), "tool recommendation failed");
            "la recomendación falló".to_owned()
        };
        let found =
            suggest::recommend(self.agent, self.chat_id, None, wish, &reference, precio_max)
                .await
                .map_err(failed)?;
        let numbers = suggest::add(self.agent, sources, &found)
            .await
            .map_err(failed)?;
        let products: Vec<Value> = sources
            .all()
            .iter()
            .filter(|s| numbers.contains(&s.n))
            .map(|s| {
                json!({
                    "fuente": s.n,
                    "sku": s.sku,
                    "nombre": s.titulo,
                    "categoria": s.categoria,
                    "precio": s.precio.map(|p| pesos(p.cents())),
                    "existencias": s.stock,
                    "motivo": s.motivo,
                })
            })
            .collect();
        Ok(json!({ "productos": products }))
    }

    async fn product_by_sku(&self, sku: &str) -> Result<producto::Model, String> {
        producto::Entity::find()
            .filter(producto::Column::Sku.eq(sku))
            .filter(producto::Column::EliminadoAt.is_null())
            .one(self.agent.db.conn())
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "tool product lookup failed");
                "la consulta falló".to_owned()
            })?
            .filter(|p| p.activo)
            .ok_or_else(|| format!("no hay ningún producto con SKU {sku}"))
    }

    async fn stock(&mut self, sources: &mut Sources, args: &Value) -> Result<Value, String> {
        let sku = text_arg(args, "sku").ok_or("falta el SKU")?;
        let product = self.product_by_sku(&sku).await?;
        Ok(product_json(sources.product(&product), &product))
    }

    async fn order(&mut self, sources: &mut Sources, args: &Value) -> Result<Value, String> {
        if let Some(pedido) = &self.pedido {
            return Err(format!(
                "ya se creó el pedido {} en esta respuesta; no se crea otro",
                pedido.id
            ));
        }
        let nombre = text_arg(args, "nombre").ok_or("falta el nombre del cliente")?;
        let email = text_arg(args, "email").ok_or("falta el correo del cliente")?;
        let email = Email::parse("email", &email)
            .map_err(|err| err.to_string())?
            .into_inner();
        let items = args
            .get("items")
            .and_then(Value::as_array)
            .filter(|items| !items.is_empty())
            .ok_or("el pedido no tiene productos")?;
        let mut lines = Vec::with_capacity(items.len());
        for item in items {
            let sku = text_arg(item, "sku").ok_or("cada producto necesita su SKU")?;
            let cantidad = number_arg(item, "cantidad")
                .filter(|q| q.fract() == 0.0 && *q >= 1.0 && *q <= 10_000.0)
                .ok_or_else(|| {
                    format!("la cantidad de {sku} debe ser un entero entre 1 y 10000")
                })?;
            lines.push(LineaSolicitada {
                producto_id: None,
                sku: Some(sku),
                cantidad: cantidad as i64,
            });
        }
        let agent = self.agent;
        let cliente_id = self.customer(&nombre, &email).await?;
        let order = NuevoPedido {
            cliente_id,
            items: lines,
            notas: text_arg(args, "notas"),
            direccion_envio: text_arg(args, "direccion_envio"),
            ..NuevoPedido::default()
        };
        let pedido = agent
            .shop
            .create_order_in(order, Some(self.chat_id))
            .await
            .map_err(|err| match err {
                ShopError::Internal(cause) => {
                    tracing::error!(error = %format!("{cause:#}"), "tool order failed");
                    "no se pudo crear el pedido".to_owned()
                }
                other => other.to_string(),
            })?;
        agent
            .search
            .stock_changed(pedido.items.iter().map(|l| l.producto_id));
        agent.events.record_order(&pedido, "agente");
        if let Err(err) = agent.memory.set_customer(self.chat_id, cliente_id).await {
            tracing::warn!(error = %err, "could not link the conversation to its customer");
        }
        // The ordered products become sources with their stock after the order.
        let ids: Vec<i64> = pedido.items.iter().map(|l| l.producto_id).collect();
        if let Ok(rows) = producto::Entity::find()
            .filter(producto::Column::Id.is_in(ids))
            .all(agent.db.conn())
            .await
        {
            for row in &rows {
                sources.product(row);
            }
        }
        let result = json!({
            "pedido": pedido.id,
            "estado": pedido.estado,
            "total": pesos(pedido.total.cents()),
            "items": pedido.items.iter().map(|l| json!({
                "sku": l.sku,
                "nombre": l.nombre,
                "cantidad": l.cantidad,
                "precio_unitario": pesos(l.precio_unitario.cents()),
                "subtotal": pesos(l.subtotal.cents()),
            })).collect::<Vec<_>>(),
        });
        self.pedido = Some(pedido);
        Ok(result)
    }

    /// The id of the customer with this email, created when new.
    async fn customer(&self, nombre: &str, email: &str) -> Result<i64, String> {
        let db = &self.agent.db;
        let existing = || async {
            cliente::Entity::find()
                .filter(cliente::Column::Email.eq(email))
                .filter(cliente::Column::EliminadoAt.is_null())
                .one(db.conn())
                .await
                .map_err(|err| {
                    tracing::error!(error = %err, "customer lookup failed");
                    "no se pudo consultar el cliente".to_owned()
                })
        };
        if let Some(found) = existing().await? {
            return Ok(found.id);
        }
        let created = self
            .agent
            .shop
            .create_customer(NuevoCliente {
                nombre: nombre.to_owned(),
                email: email.to_owned(),
                telefono: None,
                direccion: None,
                ciudad: None,
                notas: Some("Creado por el asistente de ventas".to_owned()),
            })
            .await;
        match created {
            Ok(cliente) => Ok(cliente.id),
            // Created by someone else a moment ago.
            Err(ShopError::EmailTaken) => existing()
                .await?
                .map(|c| c.id)
                .ok_or_else(|| "no se pudo registrar el cliente".to_owned()),
            Err(ShopError::Internal(cause)) => {
                tracing::error!(error = %format!("{cause:#}"), "customer creation failed");
                Err("no se pudo registrar el cliente".to_owned())
            }
            Err(other) => Err(other.to_string()),
        }
    }
}

fn product_json(fuente: usize, p: &producto::Model) -> Value {
    json!({
        "fuente": fuente,
        "sku": p.sku,
        "nombre": p.nombre,
        "categoria": p.categoria,
        "precio": pesos(p.precio_centavos),
        "existencias": p.stock,
    })
}

/// A non-empty text argument.
fn text_arg(args: &Value, name: &str) -> Option<String> {
    match args.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number argument, also when sent as a string.
fn number_arg(args: &Value, name: &str) -> Option<f64> {
    match args.get(name)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace(',', ".").parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tool_definitions_parse() {
        let names: Vec<String> = definitions().into_iter().map(|t| t.function.name).collect();
        assert_eq!(
            names,
            [
                "buscar_productos",
                "consultar_stock",
                "recomendar",
                "crear_pedido"
            ]
        );
    }

    #[test]
    fn arguments_are_read_leniently() {
        let args = json!({"cantidad": "2", "sku": 123, "vacio": " "});
        assert_eq!(number_arg(&args, "cantidad"), Some(2.0));
        assert_eq!(text_arg(&args, "sku").as_deref(), Some("123"));
        assert_eq!(text_arg(&args, "vacio"), None);
    }
}
