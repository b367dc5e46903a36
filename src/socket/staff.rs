//! The staff room: a socket that connects with a staff token joins it, and every
//! order this node creates is sent there as `pedido_nuevo` (the order as REST shows
//! it), so the dashboard shows new orders without a reload. Across nodes the
//! Socket.IO adapter carries the emit to the staff sockets of every node.

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::shop::pedidos::Pedido;

/// The room of the sockets signed in as staff.
pub(super) const STAFF_ROOM: &str = "personal";
/// The event a new order is sent as.
const NEW_ORDER: &str = "pedido_nuevo";

/// Sends each order of `orders` to the staff room, until `stop`.
pub(super) fn forward_orders<A: Adapter>(
    io: SocketIo<A>,
    mut orders: Receiver<Pedido>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let pedido = tokio::select! {
                () = stop.cancelled() => break,
                next = orders.recv() => match next {
                    Ok(pedido) => pedido,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "staff room fell behind: orders not sent live");
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                },
            };
            if let Err(err) = io.to(STAFF_ROOM).emit(NEW_ORDER, &pedido).await {
                tracing::warn!(error = %err, pedido_id = pedido.id, "new order not sent to staff");
            }
        }
    });
}
