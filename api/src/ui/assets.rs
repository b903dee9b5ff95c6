//! The console's static files, embedded in the binary: the vendored ones
//! (`api/assets/vendor/`, see its README for versions and checksums) and
//! our own stylesheet and script. They are served at
//! `/ui/assets/<version>/<file>`, where the version is a digest of all of
//! them, so they can be cached for a year: a new build changes the path.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::UiError;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static ASSETS: &[Asset] = &[
    Asset {
        name: "htmx.min.js",
        content_type: JS,
        body: include_bytes!("../../assets/vendor/htmx.org/htmx.min.js"),
    },
    Asset {
        name: "sse.min.js",
        content_type: JS,
        body: include_bytes!("../../assets/vendor/htmx-ext-sse/sse.min.js"),
    },
    Asset {
        name: "simple.min.css",
        content_type: CSS,
        body: include_bytes!("../../assets/vendor/simpledotcss/simple.min.css"),
    },
    Asset {
        name: "viz-global.js",
        content_type: JS,
        body: include_bytes!("../../assets/vendor/viz-js/viz-global.js"),
    },
    Asset {
        name: "graph.js",
        content_type: JS,
        body: include_bytes!("../../assets/graph.js"),
    },
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: JS,
        body: include_bytes!("../../assets/vendor/swagger-ui-dist/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: CSS,
        body: include_bytes!("../../assets/vendor/swagger-ui-dist/swagger-ui.css"),
    },
    Asset {
        name: "api-reference.js",
        content_type: JS,
        body: include_bytes!("../../assets/api-reference.js"),
    },
    Asset {
        name: "api-reference.css",
        content_type: CSS,
        body: include_bytes!("../../assets/api-reference.css"),
    },
    Asset {
        name: "console.css",
        content_type: CSS,
        body: include_bytes!("../../assets/console.css"),
    },
    Asset {
        name: "console.js",
        content_type: JS,
        body: include_bytes!("../../assets/console.js"),
    },
];

static PREFIX: LazyLock<String> = LazyLock::new(|| {
    let mut h = Sha256::new();
    for a in ASSETS {
        h.update(a.name.as_bytes());
        h.update(a.body);
    }
    let digest = h.finalize();
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("/ui/assets/{hex}")
});

/// `/ui/assets/<version>`: where the templates link the assets.
pub fn prefix() -> &'static str {
    &PREFIX
}

/// `GET /ui/assets/{version}/{file}`.
pub async fn serve(Path((version, file)): Path<(String, String)>) -> Response {
    let current = prefix().rsplit('/').next().unwrap_or_default();
    let found = ASSETS.iter().find(|a| a.name == file);
    match found {
        Some(a) if version == current => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(a.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            a.body,
        )
            .into_response(),
        _ => UiError::not_found(format!("no asset {version}/{file}")).into_response(),
    }
}
