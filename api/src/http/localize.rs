//! Errors in the caller's language: every error gets a stable `extensions.code` and its
//! message in Chinese (English on request), once, here, for every resolver.

use std::sync::Arc;

use async_graphql::ServerError;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextSubscribe};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::kit::error::{AppError, Locale};
use crate::kit::gql::RequestMeta;

/// Gives every error a stable `extensions.code` and the message in `locale`.
pub fn localize(errors: &mut [ServerError], locale: Locale) -> Vec<&'static str> {
    let mut codes = Vec::with_capacity(errors.len());
    for err in errors.iter_mut() {
        let mapped = err.source::<AppError>().map(|app| {
            app.log_if_internal();
            (app.code(), app.message(locale).into_owned(), app.extensions())
        });
        let code = if let Some((code, message, extensions)) = mapped {
            err.message = message;
            let ext = err.extensions.get_or_insert_with(Default::default);
            for (k, v) in extensions {
                ext.set(k, async_graphql::Value::from_json(v).unwrap_or(async_graphql::Value::Null));
            }
            ext.set("code", code);
            code
        } else if let Some(existing) = err.extensions.as_ref().and_then(|e| e.get("code")) {
            match existing {
                async_graphql::Value::String(s) if s == "UNAUTHENTICATED" => "UNAUTHENTICATED",
                _ => "INTERNAL",
            }
        } else {
            // parse, validation, depth/complexity and input-coercion errors: the query is wrong
            let field = coerced_field(&err.message);
            let ext = err.extensions.get_or_insert_with(Default::default);
            ext.set("code", "VALIDATION");
            if let Some(f) = field {
                ext.set("field", f);
            }
            "VALIDATION"
        };
        codes.push(code);
    }
    codes
}

/// The input field named in an async-graphql coercion error
/// (`Invalid value for argument "input.buildingArea", …` → `buildingArea`).
fn coerced_field(message: &str) -> Option<String> {
    let rest = message.split_once("argument \"")?.1;
    let path = rest.split('"').next()?;
    path.rsplit('.').next().map(str::to_owned)
}

/// Localizes the errors of subscription events (HTTP responses are localized in the
/// handler: an extension wraps every field resolution and cost ~10% of the houses benchmark).
pub struct LocalizeSubscriptions;

impl ExtensionFactory for LocalizeSubscriptions {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LocalizeSubscriptions)
    }
}

#[async_trait::async_trait]
impl Extension for LocalizeSubscriptions {
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, async_graphql::Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, async_graphql::Response> {
        let locale = ctx.data_opt::<RequestMeta>().map(|r| r.locale).unwrap_or_default();
        next.run(ctx, stream)
            .map(move |mut r| {
                localize(&mut r.errors, locale);
                r
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coercion_errors_name_the_field() {
        let m = r#"Invalid value for argument "input.buildingArea", expected type "Decimal""#;
        assert_eq!(coerced_field(m).as_deref(), Some("buildingArea"));
        assert_eq!(coerced_field("Unknown field"), None);
    }
}
