//! Learning from customers: the event log of what they searched, were shown,
//! clicked, rated and ordered (`events`), the clicks and ratings clients send, checked
//! before they are kept (`intake`), and what the log says about a customer (`reads`).

pub mod events;
pub mod intake;
pub mod reads;

pub use events::EventLog;
pub use intake::{Click, EventError, Intake, Origin, Rating, Sender};
