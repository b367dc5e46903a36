//! The head of a Socket.IO request, copied out of hyper's read buffer.

use axum::extract::OriginalUri;
use axum::http::{HeaderMap, HeaderValue, Uri};

use super::SOCKET_PATH;

/// Gives a Socket.IO request a head of its own. hyper parses the URI and the header
/// values as slices of the buffer it read the request into (16 KiB once grown), and
/// engine.io keeps a connection's handshake head for the connection's whole life:
/// with it, that whole buffer. Copied, the head costs what it holds and the buffer
/// is freed after the upgrade (measured: README, Benchmarks). Other requests pass
/// untouched.
pub async fn own_head(mut req: axum::extract::Request) -> axum::extract::Request {
    let ours = req
        .uri()
        .path()
        .strip_prefix(SOCKET_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if !ours {
        return req;
    }
    if let Ok(uri) = req.uri().to_string().parse::<Uri>() {
        // The router has already noted the URI it routed by (another slice).
        if let Some(original) = req.extensions_mut().get_mut::<OriginalUri>() {
            original.0 = uri.clone();
        }
        *req.uri_mut() = uri;
    }
    let headers: HeaderMap = req
        .headers()
        .iter()
        .map(|(name, value)| {
            // Names are already owned (hyper copies them); a value that would not
            // copy (never, for one hyper parsed) is kept as it is.
            let copy = HeaderValue::from_bytes(value.as_bytes()).map_or_else(
                |_| value.clone(),
                |mut copy| {
                    copy.set_sensitive(value.is_sensitive());
                    copy
                },
            );
            (name.clone(), copy)
        })
        .collect();
    *req.headers_mut() = headers;
    req
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::{OriginalUri, Request};
    use axum::http::{HeaderValue, Uri};
    use bytes::Bytes;

    use super::own_head;

    /// A request whose URI and header values are slices of one read buffer, as
    /// hyper parses them, and that buffer.
    fn parsed(path: &str) -> (Bytes, Request) {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let buffer = Bytes::from(format!("{path}{key}bearer-xyz"));
        let (end, key_end) = (path.len(), path.len() + key.len());
        let uri = Uri::from_maybe_shared(buffer.slice(..end)).unwrap();
        let mut auth = HeaderValue::from_maybe_shared(buffer.slice(key_end..)).unwrap();
        auth.set_sensitive(true);
        let mut req = Request::builder()
            .uri(uri.clone())
            .header(
                "sec-websocket-key",
                HeaderValue::from_maybe_shared(buffer.slice(end..key_end)).unwrap(),
            )
            .header("x-custom", auth)
            .header("accept-language", "es-CO")
            .header("accept-language", "es;q=0.8")
            .body(Body::empty())
            .unwrap();
        req.extensions_mut().insert(OriginalUri(uri));
        (buffer, req)
    }

    /// Whether any part of the request's head still points into `buffer`.
    fn shares(buffer: &Bytes, req: &Request) -> bool {
        let range = buffer.as_ptr_range();
        let original = req.extensions().get::<OriginalUri>().unwrap();
        std::iter::once(req.uri().path().as_ptr())
            .chain(std::iter::once(original.0.path().as_ptr()))
            .chain(req.headers().values().map(|v| v.as_bytes().as_ptr()))
            .any(|p| range.contains(&p))
    }

    #[tokio::test]
    async fn a_socket_request_gets_a_head_of_its_own() {
        let path = "/socket.io/?EIO=4&transport=websocket";
        let (buffer, req) = parsed(path);
        assert!(shares(&buffer, &req), "the fixture must share its buffer");
        let req = own_head(req).await;
        assert!(!shares(&buffer, &req));
        assert_eq!(req.uri().to_string(), path);
        let original = req.extensions().get::<OriginalUri>().unwrap();
        assert_eq!(original.0.to_string(), path);
        assert_eq!(
            req.headers()["sec-websocket-key"],
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert_eq!(req.headers()["x-custom"], "bearer-xyz");
        assert!(req.headers()["x-custom"].is_sensitive());
        let languages: Vec<_> = req.headers().get_all("accept-language").iter().collect();
        assert_eq!(languages, ["es-CO", "es;q=0.8"]);
        assert_eq!(req.headers().len(), 4);
    }

    #[tokio::test]
    async fn other_requests_pass_untouched() {
        for path in ["/api/productos?q=camion", "/socket.iox/"] {
            let (buffer, req) = parsed(path);
            let req = own_head(req).await;
            assert!(shares(&buffer, &req), "{path}");
        }
    }
}
