//! SeaORM entities: one module per table, named as the shop speaks.
//!
//! Money columns end in `_centavos` and hold exact integer cents (see
//! [`crate::shop::types::Money`]); timestamps are UTC.

pub mod cliente;
pub mod conversacion;
pub mod documento;
pub mod evento;
pub mod mensaje;
pub mod modelo_clics;
pub mod modelo_recomendacion;
pub mod pedido;
pub mod pedido_item;
pub mod producto;
pub mod usuario;
