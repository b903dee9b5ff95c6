//! Logging, metrics and (optional) OpenTelemetry traces, shared by every
//! process.
//!
//! Logs go to stderr (text or JSON lines) through `tracing`. With
//! `--otlp-endpoint` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) the spans of the
//! `switchyard*` crates are also exported over OTLP/HTTP (protobuf) by the
//! OpenTelemetry SDK: batched every `--otlp-export-interval`, from a
//! bounded queue (spans beyond it are dropped, a request never waits for
//! the collector), sent by a `reqwest` client on a small runtime of its own
//! so that the final flush works after the role's runtime has stopped.
//! [`Telemetry`], returned by [`init`], flushes and stops the export when
//! dropped.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use tracing::{Level, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

use super::config::{LogFormat, LogOpts};
use super::trace::TraceParent;

/// What [`init`] installed. Dropping it (or [`Telemetry::shutdown`])
/// exports the spans still queued and stops the export.
#[must_use = "dropping it stops the trace export"]
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn tracing(&self) -> bool {
        self.provider.is_some()
    }

    /// Export what is queued and stop.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown_with_timeout(Duration::from_secs(5))
        {
            eprintln!("switchyard: stopping the trace export: {e}");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The OTLP/HTTP traces URL of the options (or of
/// `OTEL_EXPORTER_OTLP_ENDPOINT`), if traces are to be exported.
pub fn otlp_traces_url(opts: &LogOpts) -> Option<String> {
    let env = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
    traces_url(opts.otlp_endpoint.as_deref().or(env.as_deref()))
}

/// `<endpoint>/v1/traces`, unless the endpoint already names that path.
fn traces_url(endpoint: Option<&str>) -> Option<String> {
    let base = endpoint
        .map(str::trim)
        .filter(|s| !s.is_empty())?
        .trim_end_matches('/');
    Some(if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    })
}

/// Install the global tracing subscriber (logs on stderr, and the OTLP
/// export when configured) for the process of `role` (`api`, `worker`,
/// `scheduler`, `dev`: the default `service.name` is `switchyard-<role>`).
/// Only the first call in a process installs anything; later ones return
/// an inert [`Telemetry`].
pub fn init(opts: &LogOpts, role: &str) -> Telemetry {
    let filter = EnvFilter::try_new(&opts.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match opts.log_format {
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let provider = match otlp_traces_url(opts).map(|url| tracer_provider(opts, role, &url)) {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            eprintln!("switchyard: OpenTelemetry export disabled: {e:#}");
            None
        }
        None => None,
    };
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("switchyard"))
            .with_filter(Targets::new().with_target("switchyard", Level::INFO))
    });
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .is_ok();
    let mut t = Telemetry { provider };
    if !installed {
        t.stop();
    } else if let Some(url) = otlp_traces_url(opts).filter(|_| t.tracing()) {
        tracing::info!(%url, "exporting traces over OTLP/HTTP");
    }
    t
}

fn tracer_provider(opts: &LogOpts, role: &str, url: &str) -> anyhow::Result<SdkTracerProvider> {
    let client = ExportClient::new()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .with_timeout(Duration::from_secs(10))
        .with_http_client(client)
        .build()?;
    let batches = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(opts.otlp_export_interval)
                .with_max_queue_size(4096)
                .with_max_export_batch_size(512)
                .build(),
        )
        .build();
    let name = opts
        .otlp_service_name
        .clone()
        .unwrap_or_else(|| format!("switchyard-{role}"));
    Ok(SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_resource(Resource::builder().with_service_name(name).build())
        .with_span_processor(batches)
        .build())
}

/// The exporter's HTTP client: the SDK's batch thread awaits each request,
/// which runs on a one-thread runtime of its own (so it works before,
/// during and after the role's runtime).
#[derive(Debug)]
struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    fn new() -> anyhow::Result<Self> {
        crate::init_tls();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        let client = {
            let _rt = handle.enter();
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(10))
                .build()?
        };
        Ok(Self {
            client,
            runtime: handle,
        })
    }
}

impl HttpClient for ExportClient {
    fn send_bytes<'a, 'b>(
        &'a self,
        request: Request<Bytes>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        let client = self.client.clone();
        let job = self.runtime.spawn(async move {
            let resp = client.execute(reqwest::Request::try_from(request)?).await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            Ok::<_, HttpError>(Response::builder().status(status).body(body)?)
        });
        Box::pin(async move { job.await? })
    }
}

/// Make `span` (not entered yet) a child of the remote span `parent`, when
/// spans are exported; otherwise nothing.
pub fn set_parent(span: &Span, parent: &TraceParent) {
    let remote = SpanContext::new(
        TraceId::from_bytes(parent.trace_id),
        SpanId::from_bytes(parent.span_id),
        TraceFlags::new(parent.flags),
        true,
        TraceState::default(),
    );
    // Fails only without the OpenTelemetry layer (tracing off): nothing to link.
    drop(span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote)));
}

/// The `traceparent` naming `span`, when spans are exported (`None` when
/// tracing is off or the span is filtered out).
pub fn traceparent(span: &Span) -> Option<TraceParent> {
    let cx = span.context();
    let s = cx.span();
    let sc = s.span_context();
    sc.is_valid().then(|| TraceParent {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8(),
    })
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use. Several
/// apps in one process (dev mode, tests) share it.
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ])
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then our
        // handle still renders (empty) text rather than panicking.
        drop(metrics::set_global_recorder(recorder));
        handle
    })
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn the_traces_path_is_appended_once() {
        let url = |e| traces_url(Some(e)).unwrap_or_default();
        assert_eq!(url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(url("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
        assert_eq!(url("https://c/otlp"), "https://c/otlp/v1/traces");
        assert_eq!(traces_url(Some("  ")), None);
        assert_eq!(traces_url(None), None);
    }
}
