//! Process signals (STYLE G1): SIGTERM (orchestrators) or SIGINT (Ctrl-C) start a drain.

/// Resolves on the first SIGTERM or SIGINT. The handlers are installed when this is called,
/// not when the future is first polled: call it before announcing readiness, so a signal
/// sent right after the "listening" line starts a drain instead of killing the process with
/// the default action (seen under load in CI).
pub fn signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        match handlers {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                // Without signal handlers we can still honour Ctrl-C through tokio's fallback.
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
