//! Primary gateway, and a secondary tried when the primary fails for reasons that are
//! not the message's fault (network, 5xx, refused credentials). A bad number, a template
//! problem or a rate limit on the number is final: the secondary would fail or spam.

use futures_util::future::BoxFuture;
use std::sync::Arc;

use super::{SmsError, SmsMessage, SmsSender};

pub struct Failover {
    pub primary: Arc<dyn SmsSender>,
    pub secondary: Arc<dyn SmsSender>,
}

impl SmsSender for Failover {
    fn name(&self) -> &'static str {
        self.primary.name()
    }

    fn send<'a>(&'a self, msg: &'a SmsMessage) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(async move {
            match self.primary.send(msg).await {
                Err(e @ (SmsError::Transport(_) | SmsError::Auth(_))) => {
                    tracing::warn!(primary = self.primary.name(), secondary = self.secondary.name(), error = %e, "SMS failover");
                    self.secondary.send(msg).await
                }
                other => other,
            }
        })
    }
}
