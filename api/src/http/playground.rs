//! GET /graphql: the GraphiQL playground managers work in. Its JavaScript and CSS (GraphiQL,
//! React, a sign-in box, the managers' example operations) are bundled at build time and
//! served from the binary, so the page works on an intranet or behind a firewall that
//! blocks public CDNs.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

mod assets {
    include!(concat!(env!("OUT_DIR"), "/playground_assets.rs"));
}

pub async fn page() -> Response {
    if !assets::BUNDLED {
        let body = "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>wuye 物业</title>\
            <p>操练场资源未构建：运行 <code>./deploy/playground.sh</code> 后重新编译。</p>\
            <p>The playground assets are not built: run <code>./deploy/playground.sh</code> and rebuild.</p></html>";
        return (StatusCode::SERVICE_UNAVAILABLE, Html(body)).into_response();
    }
    let v = assets::VERSION;
    Html(format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>wuye 物业 · GraphQL</title>\
         <link rel=\"stylesheet\" href=\"/graphql/assets/playground.css?v={v}\"></head>\
         <body><div id=\"root\">Loading…</div><script src=\"/graphql/assets/playground.js?v={v}\"></script></body></html>"
    ))
    .into_response()
}

pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match name.as_str() {
        "playground.js" if assets::BUNDLED => (assets::JS, "text/javascript; charset=utf-8"),
        "playground.css" if assets::BUNDLED => (assets::CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
