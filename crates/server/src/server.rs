//! The server as a process: binds the listeners, serves the HTTP edge over the services of
//! [`App`], and stops in order (rooms ended, recordings finalised).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::app::{App, StartError};
use crate::config::ServerConfig;

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    /// Where metrics are served when `prometheus.listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    /// Where plain HTTP is redirected to HTTPS, when `client.tls.http_redirect_port` is set.
    pub redirect_addr: Option<SocketAddr>,
    pub app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds and serves until [`Server::stop`].
    pub async fn start(config: ServerConfig) -> Result<Self, StartError> {
        let mut config = config;
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        // The port actually bound (0 in tests), which `/api/tls` and redirects name.
        config.listen = addr;
        let redirect_listener = match config.tls.as_ref().and_then(|t| t.redirect_port) {
            Some(p) => Some(
                TcpListener::bind(std::net::SocketAddr::new(addr.ip(), p))
                    .await
                    .map_err(|source| StartError::RedirectPort { port: p, source })?,
            ),
            None => None,
        };
        let app = App::new(config).await?;
        let router = crate::http::router(app.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let limits = app.config.conn_limits;
        let metrics = app.metrics.clone();
        // Metrics on their own address, when configured (a monitoring network).
        let metrics_listener = match (app.config.prometheus.enable, app.config.prometheus.listen) {
            (true, Some(addr)) => Some(TcpListener::bind(addr).await?),
            _ => None,
        };
        let stop = tokio_util::sync::CancellationToken::new();
        // Side listeners (plain HTTP, no proxies to trust) that stop with the main one.
        let side = |l: TcpListener, r: axum::Router, what: &str| -> std::io::Result<SocketAddr> {
            let local = l.local_addr()?;
            tracing::info!(addr = %local, "{what}");
            tokio::spawn(crate::http::listener::serve(
                l,
                r,
                limits,
                metrics.clone(),
                None,
                Arc::from([]),
                stop.clone().cancelled_owned(),
            ));
            Ok(local)
        };
        let metrics_addr = match metrics_listener {
            Some(l) => Some(side(
                l,
                crate::http::metrics_router(&app).with_state(app.clone()),
                "metrics served on their own address",
            )?),
            None => None,
        };
        let redirect_addr = match redirect_listener {
            Some(l) => Some(side(
                l,
                crate::http::https::redirect_router(addr.port()),
                "plain HTTP redirected to HTTPS",
            )?),
            None => None,
        };
        let task = tokio::spawn(crate::http::listener::serve(
            listener,
            router,
            limits,
            metrics,
            app.tls.clone(),
            Arc::from(app.config.trusted_proxies.as_slice()),
            async move {
                let _ = rx.await;
                stop.cancel();
            },
        ));
        if let Some(tls) = &app.tls {
            tls.listening();
        }
        Ok(Self {
            addr,
            metrics_addr,
            redirect_addr,
            app,
            shutdown: Some(tx),
            task,
        })
    }

    /// Ends every room and stops serving.
    pub async fn stop(mut self) -> Result<(), StartError> {
        for room in self.app.rooms.all() {
            let _ = room.end(crate::rooms::core::EndReason::Shutdown).await;
        }
        self.app
            .recorders
            .finished(std::time::Duration::from_secs(60))
            .await;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await??;
        Ok(())
    }

    /// Serves until the task ends (the binary's main loop).
    pub async fn wait(self) -> Result<(), StartError> {
        let Server { task, shutdown, .. } = self;
        let _keep = shutdown;
        task.await??;
        Ok(())
    }
}
