//! The prompt: the shop's instructions, the numbered sources with their current
//! prices and stock, the recent conversation and the question.

use ollama_rs::generation::chat::ChatMessage;

use super::memory::Turn;
use crate::llm::source::{Lang, Source, SourceKind};
use crate::shop::types::pesos;

/// The built-in instructions (`TENDERO_SYSTEM_PROMPT` replaces them).
pub const DEFAULT_SYSTEM_PROMPT: &str = "\
Eres el asesor de ventas de la tienda. Atiendes a clientes por chat con frases cortas, \
claras y amables, y respondes siempre en el idioma en que te escribe el cliente.
Reglas:
- Usa solo la información del CONTEXTO. Cita cada producto o dato con el número de su fuente \
entre corchetes, por ejemplo [1].
- Nunca inventes productos, precios ni existencias. Los precios y existencias del CONTEXTO son \
los vigentes: cópialos tal cual. Si algo no está en el CONTEXTO, di que no lo sabes.
- Si nada del CONTEXTO sirve para la pregunta, dilo con honestidad y ofrece buscar otra cosa.
- Para tomar un pedido necesitas el nombre y el correo del cliente y, por cada producto, su SKU \
y la cantidad. Confírmalos con el cliente y entonces usa la herramienta crear_pedido; después \
di el número de pedido.
- Usa buscar_productos o consultar_stock cuando necesites productos o existencias que no están \
en el CONTEXTO.
- Si el cliente pide recomendaciones, algo que combine con un producto o algo parecido, ofrece \
los productos marcados como Recomendado en el CONTEXTO, o usa la herramienta recomendar.";

/// The sources as the model reads them.
pub fn context_block(sources: &[Source]) -> String {
    if sources.is_empty() {
        return "CONTEXTO: no se encontró nada en el catálogo ni en los documentos de la tienda \
                para esta pregunta."
            .to_owned();
    }
    let mut block = String::from("CONTEXTO (precios y existencias vigentes):\n");
    for source in sources {
        block.push_str(&source_line(source));
        block.push('\n');
    }
    block
}

/// One source as the model reads it.
pub fn source_line(source: &Source) -> String {
    match source.tipo {
        SourceKind::Producto => {
            let mut line = format!("[{}] Producto: {}", source.n, source.titulo);
            if let Some(sku) = &source.sku {
                line.push_str(&format!(" | SKU {sku}"));
            }
            if let Some(categoria) = &source.categoria {
                line.push_str(&format!(" | Categoría: {categoria}"));
            }
            if let Some(precio) = source.precio {
                line.push_str(&format!(" | Precio: {} COP", pesos(precio.cents())));
            }
            match source.stock {
                Some(0) => line.push_str(" | Agotado"),
                Some(stock) => line.push_str(&format!(" | Existencias: {stock}")),
                None => {}
            }
            if let Some(motivo) = &source.motivo {
                line.push_str(&format!(" | Recomendado: {}", motivo.replace('_', " ")));
            }
            if !source.fragmento.is_empty() {
                line.push_str(&format!("\n    {}", source.fragmento));
            }
            line
        }
        SourceKind::Documento => format!(
            "[{}] Documento: {}\n    {}",
            source.n, source.titulo, source.fragmento
        ),
    }
}

/// The messages for the model: instructions and sources, the recent conversation,
/// the question.
pub fn messages(
    system_prompt: &str,
    sources: &[Source],
    history: &[Turn],
    question: &str,
    lang: Lang,
) -> Vec<ChatMessage> {
    let language = match lang {
        Lang::Spanish => "El cliente escribe en español: responde en español.",
        Lang::English => "The customer writes in English: answer in English.",
    };
    let system = format!("{system_prompt}\n\n{}\n{language}", context_block(sources));
    let mut messages = Vec::with_capacity(history.len() + 2);
    messages.push(ChatMessage::system(system));
    for turn in history {
        messages.push(if turn.from_customer() {
            ChatMessage::user(turn.contenido.clone())
        } else {
            ChatMessage::assistant(turn.contenido.clone())
        });
    }
    messages.push(ChatMessage::user(question.to_owned()));
    messages
}
