//! Learning from customers: the event log of what they searched, were shown,
//! clicked, rated and ordered (`events`), the clicks and ratings clients send, checked
//! before they are kept (`intake`), what the log says about a customer (`reads`), the
//! ranking learned from the clicks on searches (`clicks`), and the figures staff read
//! (`analytics`).

pub mod analytics;
pub mod clicks;
pub mod events;
pub mod intake;
pub mod reads;

pub use analytics::{Analytics, AnalyticsError};
pub use clicks::{ClickLearner, LearnError};
pub use events::EventLog;
pub use intake::{Click, EventError, Intake, Origin, Rating, Sender};
