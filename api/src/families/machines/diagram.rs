//! A state machine's diagram as SVG geometry, laid out here on the server
//! (no script, no layout library): states in layers from top to bottom,
//! edges as curves. The template `machines/diagram.html` draws it.
//!
//! Layout, in the spirit of Sugiyama's method but small:
//! 1. a depth-first walk from the initial states (then from any state not
//!    reached) marks the edges that close a cycle as *back* edges;
//! 2. without them the graph is acyclic, and each state's layer is the
//!    longest path to it (terminal states sink to the bottom);
//! 3. an edge spanning several layers passes each layer in between through
//!    a narrow dummy slot, so it never crosses a box; a back edge is drawn
//!    the same way, upward;
//! 4. within a layer, states and slots are ordered by the mean position of
//!    their neighbours in the layer above, then below (a few sweeps);
//! 5. edges leave a box's bottom and enter the next one's top (upward ones
//!    the other way round), spread over the side; edges within a layer arc
//!    above, a self-move loops on the right.

use std::collections::BTreeMap;

use switchyard_shared::families::machines::{Definition, MetricsReport, Severity};

/// Width and height of a state's box.
const W: f64 = 184.0;
const H: f64 = 58.0;
/// Space between boxes of a layer, and between layers.
const GAP_X: f64 = 36.0;
const GAP_Y: f64 = 74.0;
/// Margin around the drawing; the right one leaves room for self-moves.
const MARGIN: f64 = 24.0;
const MARGIN_RIGHT: f64 = 60.0;
/// Longest state name drawn whole (the full name is the box's tooltip).
const NAME_SHOWN: usize = 22;

/// One state's box.
pub struct Node {
    pub id: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    /// The name as drawn (shortened), and the tooltip.
    pub label: String,
    pub title: String,
    /// `12 in state · oldest 3 min`, or `terminal`.
    pub figures: String,
    /// CSS classes: `initial`, `terminal`, `warning`, `critical`.
    pub class: String,
    pub initial: bool,
}

impl Node {
    /// The text's x (box centre).
    pub fn cx(&self) -> f64 {
        self.x + self.w / 2.0
    }
}

/// One edge: an SVG path, its label (moves in the last hour) and tooltip.
pub struct Edge {
    pub d: String,
    pub label: String,
    pub lx: f64,
    pub ly: f64,
    pub title: String,
    /// `active` when it carried moves in the last hour.
    pub class: &'static str,
}

/// The drawing.
pub struct Diagram {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// How much larger than its coordinates the drawing is shown (it shrinks
/// to the page's width on narrow screens).
const SCALE: f64 = 1.25;

impl Diagram {
    /// The width and height shown, in CSS pixels.
    pub fn shown_width(&self) -> f64 {
        (self.width * SCALE).round()
    }

    pub fn shown_height(&self) -> f64 {
        (self.height * SCALE).round()
    }
}

/// `3 s`, `4 min`, `2 h 5 min`, `3 d 4 h`.
pub fn human_age(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// Index of each state id, the edges as index pairs (unknown targets
/// dropped), and which are back edges.
struct Graph {
    n: usize,
    edges: Vec<(usize, usize)>,
    back: Vec<bool>,
}

impl Graph {
    fn new(def: &Definition) -> Self {
        let index: BTreeMap<&str, usize> = def
            .states
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let mut edges = Vec::new();
        for (i, s) in def.states.iter().enumerate() {
            for t in &s.next {
                if let Some(&j) = index.get(t.as_str())
                    && !edges.contains(&(i, j))
                {
                    edges.push((i, j));
                }
            }
        }
        let n = def.states.len();
        let mut roots: Vec<usize> = def
            .initial
            .iter()
            .filter_map(|id| index.get(id.as_str()).copied())
            .collect();
        roots.extend(0..n);
        let back = Self::back_edges(n, &edges, &roots);
        Self { n, edges, back }
    }

    /// Edges closing a cycle in a depth-first walk from `roots` in order
    /// (iterative, so deep machines cannot overflow the stack).
    fn back_edges(n: usize, edges: &[(usize, usize)], roots: &[usize]) -> Vec<bool> {
        // 0 unseen, 1 on the stack, 2 done.
        let mut mark = vec![0u8; n];
        let mut back = vec![false; edges.len()];
        let out: Vec<Vec<usize>> = (0..n)
            .map(|u| (0..edges.len()).filter(|&e| edges[e].0 == u).collect())
            .collect();
        for &r in roots {
            if mark[r] != 0 {
                continue;
            }
            let mut stack = vec![(r, 0usize)];
            mark[r] = 1;
            while let Some(&mut (u, ref mut next)) = stack.last_mut() {
                if let Some(&e) = out[u].get(*next) {
                    *next += 1;
                    let v = edges[e].1;
                    match mark[v] {
                        0 => {
                            mark[v] = 1;
                            stack.push((v, 0));
                        }
                        1 => back[e] = true,
                        _ => {}
                    }
                } else {
                    mark[u] = 2;
                    stack.pop();
                }
            }
        }
        back
    }

    /// Longest-path layers over the forward edges.
    fn layers(&self) -> Vec<usize> {
        let mut layer = vec![0usize; self.n];
        // At most n rounds: the forward edges form a DAG.
        for _ in 0..self.n {
            let mut changed = false;
            for (e, &(u, v)) in self.edges.iter().enumerate() {
                if !self.back[e] && u != v && layer[v] < layer[u] + 1 {
                    layer[v] = layer[u] + 1;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        layer
    }
}

/// An edge between different layers, drawn from its upper end down to its
/// lower one through one dummy slot per layer in between (so it never
/// crosses a box); a back edge is such a chain drawn the other way.
struct Chain {
    /// The edge (index into `Graph::edges`).
    edge: usize,
    /// Node indexes from the upper end to the lower one; dummies in between.
    path: Vec<usize>,
    /// Drawn upward (a back edge: its source is the lower end).
    upward: bool,
}

/// The layer of every node (states first, then dummies) and the chains.
fn chains(g: &Graph, layer: &[usize]) -> (Vec<usize>, Vec<Chain>) {
    let mut layers = layer.to_vec();
    let mut out = Vec::new();
    for (e, &(u, v)) in g.edges.iter().enumerate() {
        if layer[u] == layer[v] {
            continue;
        }
        let (top, bottom, upward) = if layer[u] < layer[v] {
            (u, v, false)
        } else {
            (v, u, true)
        };
        let mut path = vec![top];
        for l in layer[top] + 1..layer[bottom] {
            path.push(layers.len());
            layers.push(l);
        }
        path.push(bottom);
        out.push(Chain {
            edge: e,
            path,
            upward,
        });
    }
    (layers, out)
}

/// Order the nodes of each layer: states in definition order, dummies
/// after them, then barycentre sweeps (down over the nodes above, up over
/// those below) along the chains' segments.
fn order(layer: &[usize], segments: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let depth = layer.iter().copied().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (i, &l) in layer.iter().enumerate() {
        rows[l].push(i);
    }
    let mut pos = vec![0.0f64; layer.len()];
    let place = |rows: &Vec<Vec<usize>>, pos: &mut Vec<f64>| {
        for row in rows {
            for (k, &i) in row.iter().enumerate() {
                pos[i] = k as f64;
            }
        }
    };
    place(&rows, &mut pos);
    for downward in [true, false, true, false, true] {
        let range: Vec<usize> = if downward {
            (1..depth).collect()
        } else {
            (0..depth.saturating_sub(1)).rev().collect()
        };
        for l in range {
            let mut keyed: Vec<(f64, usize)> = rows[l]
                .iter()
                .map(|&i| {
                    let near: Vec<f64> = segments
                        .iter()
                        .filter_map(|&(a, b)| {
                            // a is the upper end of every segment.
                            if downward {
                                (b == i).then_some(pos[a])
                            } else {
                                (a == i).then_some(pos[b])
                            }
                        })
                        .collect();
                    let key = if near.is_empty() {
                        pos[i]
                    } else {
                        near.iter().sum::<f64>() / near.len() as f64
                    };
                    (key, i)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            rows[l] = keyed.into_iter().map(|(_, i)| i).collect();
            place(&rows, &mut pos);
        }
    }
    rows
}

fn pt(x: f64, y: f64) -> String {
    format!("{x:.1} {y:.1}")
}

/// The point at t = ½ of a cubic Bézier curve.
fn mid(p: [(f64, f64); 4]) -> (f64, f64) {
    let f = |c: [f64; 4]| (c[0] + 3.0 * c[1] + 3.0 * c[2] + c[3]) / 8.0;
    (
        f([p[0].0, p[1].0, p[2].0, p[3].0]),
        f([p[0].1, p[1].1, p[2].1, p[3].1]),
    )
}

/// The width of a dummy slot (where a long edge passes a layer).
const DUMMY_W: f64 = 14.0;

/// Lay out `def`, with the figures and firing thresholds of `report`.
pub fn layout(def: &Definition, report: &MetricsReport) -> Diagram {
    let g = Graph::new(def);
    let (layer, chains) = chains(&g, &g.layers());
    let segments: Vec<(usize, usize)> = chains
        .iter()
        .flat_map(|c| c.path.windows(2).map(|w| (w[0], w[1])))
        .collect();
    let rows = order(&layer, &segments);
    let slot = |i: usize| if i < g.n { W } else { DUMMY_W };
    let row_width = |row: &Vec<usize>| {
        row.iter().map(|&i| slot(i)).sum::<f64>() + (row.len() as f64 - 1.0).max(0.0) * GAP_X
    };
    let inner = rows.iter().map(row_width).fold(W, f64::max);
    let width = MARGIN + inner + MARGIN_RIGHT;
    let height = 2.0 * MARGIN + 18.0 + rows.len() as f64 * (H + GAP_Y) - GAP_Y;
    // Each node's left x and top y.
    let mut at = vec![(0.0f64, 0.0f64); layer.len()];
    for (l, row) in rows.iter().enumerate() {
        let mut x = MARGIN + (inner - row_width(row)) / 2.0;
        let y = MARGIN + 18.0 + l as f64 * (H + GAP_Y);
        for &i in row {
            at[i] = (x, y);
            x += slot(i) + GAP_X;
        }
    }
    let firing = |state: &str, severity: Severity| {
        report
            .thresholds
            .iter()
            .any(|t| t.firing && t.state == state && t.severity == severity)
    };
    let nodes = def
        .states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let name = if s.name.is_empty() { &s.id } else { &s.name };
            let m = report.metrics.states.get(&s.id);
            let terminal = s.next.is_empty();
            let figures = match m {
                _ if terminal => "terminal".to_owned(),
                Some(m) => {
                    let n = m.count.unwrap_or(0);
                    match m.oldest_age_seconds {
                        Some(a) if n > 0 => format!("{n} in state · oldest {}", human_age(a)),
                        _ => format!("{n} in state"),
                    }
                }
                None => String::new(),
            };
            let initial = def.initial.contains(&s.id);
            let mut class = vec!["state"];
            if initial {
                class.push("initial");
            }
            if terminal {
                class.push("terminal");
            }
            if firing(&s.id, Severity::Critical) {
                class.push("critical");
            } else if firing(&s.id, Severity::Warning) {
                class.push("warning");
            }
            Node {
                id: s.id.clone(),
                x: at[i].0,
                y: at[i].1,
                w: W,
                h: H,
                label: shorten(name, NAME_SHOWN),
                title: format!("{name} ({})", s.id),
                figures,
                class: class.join(" "),
                initial,
            }
        })
        .collect();
    Diagram {
        width,
        height,
        nodes,
        edges: edges(def, report, &g, &layer, &chains, &at),
    }
}

/// A segment's Bézier control points between two points, vertical at both ends.
fn vertical(a: (f64, f64), b: (f64, f64)) -> [(f64, f64); 4] {
    let dy = (b.1 - a.1) * 0.45;
    [a, (a.0, a.1 + dy), (b.0, b.1 - dy), b]
}

fn edges(
    def: &Definition,
    report: &MetricsReport,
    g: &Graph,
    layer: &[usize],
    chains: &[Chain],
    at: &[(f64, f64)],
) -> Vec<Edge> {
    // Ports: the chains leaving each box's bottom (it is their upper end)
    // and entering its top (their lower end), spread in the order of the
    // next node's x.
    let port = |c: usize, upper: bool| -> f64 {
        let me = if upper {
            chains[c].path[0]
        } else {
            chains[c].path[chains[c].path.len() - 1]
        };
        let next_x = |k: usize| {
            let p = &chains[k].path;
            if upper {
                at[p[1]].0
            } else {
                at[p[p.len() - 2]].0
            }
        };
        let mut mine: Vec<(f64, usize)> = (0..chains.len())
            .filter(|&k| {
                let p = &chains[k].path;
                if upper {
                    p[0] == me
                } else {
                    p[p.len() - 1] == me
                }
            })
            .map(|k| (next_x(k), k))
            .collect();
        mine.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let k = mine.iter().position(|&(_, f)| f == c).unwrap_or(0);
        at[me].0 + W * (k as f64 + 1.0) / (mine.len() as f64 + 1.0)
    };
    let mut out = Vec::new();
    let mut shapes: Vec<(usize, String, (f64, f64))> = Vec::new();
    for (c, chain) in chains.iter().enumerate() {
        let p = &chain.path;
        let (top, bottom) = (p[0], p[p.len() - 1]);
        // Points from the upper box's bottom to the lower box's top, with
        // each dummy's top and bottom.
        let gap = if chain.upward { 2.0 } else { 0.0 };
        let mut pts = vec![(port(c, true), at[top].1 + H + gap)];
        for &d in &p[1..p.len() - 1] {
            let x = at[d].0 + DUMMY_W / 2.0;
            pts.push((x, at[d].1));
            pts.push((x, at[d].1 + H));
        }
        let end_gap = if chain.upward { 0.0 } else { 2.0 };
        pts.push((port(c, false), at[bottom].1 - end_gap));
        if chain.upward {
            pts.reverse();
        }
        // Curves between layers, straight lines through the dummies' layers.
        let mut d = format!("M{}", pt(pts[0].0, pts[0].1));
        let mut label = None;
        for (k, w) in pts.windows(2).enumerate() {
            if k % 2 == 0 {
                let b = vertical(w[0], w[1]);
                d.push_str(&format!(
                    " C{} {} {}",
                    pt(b[1].0, b[1].1),
                    pt(b[2].0, b[2].1),
                    pt(b[3].0, b[3].1)
                ));
                label.get_or_insert(mid(b));
            } else {
                d.push_str(&format!(" L{}", pt(w[1].0, w[1].1)));
            }
        }
        shapes.push((chain.edge, d, label.unwrap_or(pts[0])));
    }
    for (e, &(u, v)) in g.edges.iter().enumerate() {
        if u != v && layer[u] != layer[v] {
            continue;
        }
        let (ux, uy) = at[u];
        let (vx, vy) = at[v];
        let b: [(f64, f64); 4] = if u == v {
            [
                (ux + W, uy + 14.0),
                (ux + W + 46.0, uy - 8.0),
                (ux + W + 46.0, uy + H + 8.0),
                (ux + W, uy + H - 14.0),
            ]
        } else {
            // Within a layer: an arc over the boxes in between.
            let (x1, x2) = (ux + W / 2.0, vx + W / 2.0);
            let lift = 22.0 + (x2 - x1).abs() * 0.12;
            [(x1, uy), (x1, uy - lift), (x2, vy - lift), (x2, vy - 2.0)]
        };
        let d = format!(
            "M{} C{} {} {}",
            pt(b[0].0, b[0].1),
            pt(b[1].0, b[1].1),
            pt(b[2].0, b[2].1),
            pt(b[3].0, b[3].1)
        );
        shapes.push((e, d, mid(b)));
    }
    shapes.sort_by_key(|s| s.0);
    for (e, d, (lx, ly)) in shapes {
        let (u, v) = g.edges[e];
        let from = &def.states[u].id;
        let to = &def.states[v].id;
        let w = report.metrics.edges.get(&format!("{from}>{to}"));
        let hour = w.map_or(0, |w| w.one_hour);
        out.push(Edge {
            d,
            label: if hour > 0 {
                format!("{hour}/h")
            } else {
                String::new()
            },
            lx: (lx * 10.0).round() / 10.0,
            ly: (ly * 10.0).round() / 10.0 + 4.0,
            title: match w {
                Some(w) => format!(
                    "{from} → {to}: {} in 1 min, {} in 5 min, {} in 1 h",
                    w.one_minute, w.five_minutes, w.one_hour
                ),
                None => format!("{from} → {to}"),
            },
            class: if hour > 0 { "edge active" } else { "edge" },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use switchyard_shared::families::machines::{MachineSpec, StateSpec, validate};

    fn def(states: &[(&str, &[&str])]) -> Definition {
        validate(MachineSpec {
            id: "m".into(),
            name: String::new(),
            states: states
                .iter()
                .map(|(id, next)| StateSpec {
                    id: (*id).into(),
                    name: String::new(),
                    next: next.iter().map(|s| (*s).into()).collect(),
                    initial: false,
                })
                .collect(),
            thresholds: vec![],
        })
        .unwrap()
    }

    fn empty_report() -> MetricsReport {
        MetricsReport {
            metrics: switchyard_shared::families::machines::MachineMetrics {
                machine: "m".into(),
                at: String::new(),
                states: BTreeMap::new(),
                edges: BTreeMap::new(),
                rejected: switchyard_shared::families::machines::Windows {
                    one_minute: 0,
                    five_minutes: 0,
                    one_hour: 0,
                },
            },
            thresholds: vec![],
        }
    }

    #[test]
    fn layers_follow_the_longest_path_and_cycles_do_not_loop() {
        let d = def(&[
            ("new", &["paid", "done"]),
            ("paid", &["shipped", "new"]),
            ("shipped", &["done", "shipped"]),
            ("done", &[]),
        ]);
        let g = Graph::new(&d);
        assert_eq!(g.layers(), [0, 1, 2, 3]);
        // paid → new closes a cycle; shipped → shipped is a self-move.
        let back: Vec<(usize, usize)> = g
            .edges
            .iter()
            .zip(&g.back)
            .filter(|(_, b)| **b)
            .map(|(e, _)| *e)
            .collect();
        assert_eq!(back, [(1, 0), (2, 2)]);
    }

    #[test]
    fn boxes_do_not_overlap_and_every_edge_is_drawn() {
        let d = def(&[
            ("a", &["b", "c", "d"]),
            ("b", &["e"]),
            ("c", &["e"]),
            ("d", &["e", "a"]),
            ("e", &[]),
        ]);
        let dia = layout(&d, &empty_report());
        assert_eq!(dia.nodes.len(), 5);
        assert_eq!(dia.edges.len(), 7);
        for (i, a) in dia.nodes.iter().enumerate() {
            assert!(a.x >= 0.0 && a.x + a.w <= dia.width, "{}", a.id);
            assert!(a.y >= 0.0 && a.y + a.h <= dia.height, "{}", a.id);
            for b in &dia.nodes[i + 1..] {
                let apart =
                    a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
                assert!(apart, "{} overlaps {}", a.id, b.id);
            }
        }
        assert!(dia.nodes[0].class.contains("initial"));
        assert!(dia.nodes[4].class.contains("terminal"));
    }

    #[test]
    fn a_long_edge_passes_the_layers_in_between_beside_the_boxes() {
        let d = def(&[
            ("new", &["paid", "cancelled"]),
            ("paid", &["shipped", "cancelled", "new"]),
            ("shipped", &[]),
            ("cancelled", &[]),
        ]);
        let dia = layout(&d, &empty_report());
        // new → cancelled spans two layers: a curve, a line past `paid`, a curve.
        assert!(dia.edges[1].d.contains(" L"), "{}", dia.edges[1].d);
        assert_eq!(dia.edges[1].d.matches(" C").count(), 2);
        // paid → new goes up: it starts at paid's top.
        let paid = &dia.nodes[1];
        let start_y: f64 = dia.edges[4].d.split(' ').nth(1).unwrap().parse().unwrap();
        assert!((start_y - paid.y).abs() < 0.5, "{}", dia.edges[4].d);
    }

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(human_age(4.2), "4 s");
        assert_eq!(human_age(185.0), "3 min");
        assert_eq!(human_age(7_500.0), "2 h 5 min");
        assert_eq!(human_age(3.0 * 86_400.0 + 4.0 * 3600.0), "3 d 4 h");
    }
}
