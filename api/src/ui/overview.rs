//! `/ui/`: one tile per section with its counts and failing items (from
//! the section's overview hook); tiles with failing things come first. The
//! tiles refetch (`/ui/overview`) when any section's main topic changes.

use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{NavItem, Viewer, render};
use crate::state::AppState;

/// How long one section's overview hook may take before its tile says so.
const HOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// What a section's overview hook answers.
#[derive(Debug, Default, Clone)]
pub struct Overview {
    /// Counts shown on the tile, in order.
    pub counts: Vec<Count>,
    /// Things that need a human, worst first (a few; the tile links to the section).
    pub failing: Vec<Failing>,
}

/// One number of a tile.
#[derive(Debug, Clone)]
pub struct Count {
    pub label: String,
    pub value: u64,
    /// Shown as a problem (e.g. dead deliveries) when non-zero.
    pub bad: bool,
}

impl Count {
    pub fn new(label: impl Into<String>, value: u64) -> Self {
        Self {
            label: label.into(),
            value,
            bad: false,
        }
    }

    /// A count that is a problem when non-zero.
    pub fn bad(label: impl Into<String>, value: u64) -> Self {
        Self {
            bad: true,
            ..Self::new(label, value)
        }
    }
}

/// One failing thing, linked to its page.
#[derive(Debug, Clone)]
pub struct Failing {
    pub what: String,
    pub href: String,
}

/// A tile as rendered.
pub struct Tile {
    pub item: NavItem,
    pub overview: Overview,
    pub error: Option<String>,
}

impl Tile {
    fn failing(&self) -> usize {
        self.overview.failing.len()
            + self
                .overview
                .counts
                .iter()
                .filter(|c| c.bad && c.value > 0)
                .count()
            + usize::from(self.error.is_some())
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Page<'a> {
    ui: &'a Viewer,
    tiles: &'a [Tile],
    topics: String,
    triggers: String,
}

#[derive(Template)]
#[template(path = "overview_tiles.html")]
struct Tiles<'a> {
    tiles: &'a [Tile],
}

async fn tiles_of(state: &AppState) -> Vec<Tile> {
    let calls = state
        .console
        .overviews
        .iter()
        .map(|(item, hook)| async move {
            let (overview, error) = match hook {
                None => (Overview::default(), None),
                Some(h) => match tokio::time::timeout(HOOK_TIMEOUT, h()).await {
                    Ok(Ok(o)) => (o, None),
                    Ok(Err(e)) => {
                        tracing::warn!(section = item.segment, error = %e, "overview hook failed");
                        (
                            Overview::default(),
                            Some("could not read the counts".to_owned()),
                        )
                    }
                    Err(_) => (Overview::default(), Some("counts timed out".to_owned())),
                },
            };
            Tile {
                item: item.clone(),
                overview,
                error,
            }
        });
    let mut tiles = futures::future::join_all(calls).await;
    // Stable: among equals, the registry's order.
    tiles.sort_by_key(|t| std::cmp::Reverse(t.failing()));
    tiles
}

/// `GET /ui/`.
pub async fn page(State(state): State<AppState>, ui: Viewer) -> Response {
    let tiles = tiles_of(&state).await;
    let topics = state.console.overview_topics.join(",");
    let triggers = state
        .console
        .overview_topics
        .iter()
        .map(|t| format!("sse:{t}"))
        .collect::<Vec<_>>()
        .join(", ");
    render(&Page {
        ui: &ui,
        tiles: &tiles,
        topics,
        triggers,
    })
}

/// `GET /ui/overview`: the tiles alone (the live region of `/ui/`).
pub async fn tiles(State(state): State<AppState>) -> Response {
    let tiles = tiles_of(&state).await;
    render(&Tiles { tiles: &tiles })
}
