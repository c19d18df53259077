//! The computational graph circuit analyses work on (as in ACDC and EAP).
//!
//! **Nodes**: the token embedding (`embed`, TL's `hook_embed`), the position embedding
//! (`pos_embed`, `hook_pos_embed`; absent for a shortformer, whose W_pos never enters the
//! residual stream), every attention head `L{l}H{h}`, every MLP `MLP{l}`, and the logits.
//!
//! **Senders** are the nodes that write to the residual stream (embeddings, heads, MLPs);
//! their output is what they add: `W_E[tok]`, `W_pos[pos]`, `z_h W_O[h]` (TL's
//! `hook_result`), `mlp_out − b_out`. The biases b_O and b_out are constants, not senders.
//!
//! **Receivers** are the inputs that read the residual stream: each head's query, key and
//! value inputs separately (`L{l}H{h}.q`, `.k`, `.v`, TL's `hook_q_input` etc. before ln1),
//! each MLP's input (`MLP{l}`), and the logits (before `ln_final`).
//!
//! **Edges**: every sender → later receiver. A receiver's input is the sum of its edges
//! plus the constant biases, so the residual stream is exactly the edges' sum and a model
//! with every edge is the model. Senders are ordered so that the senders a receiver reads
//! are a prefix `0..avail[r]`: embed, pos_embed, then per layer its heads, then its MLP.

use serde::Serialize;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    Embed,
    PosEmbed,
    Head { layer: usize, head: usize },
    Mlp { layer: usize },
    Logits,
}

/// Which input of a node a receiver is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Port {
    Q,
    K,
    V,
    /// an MLP's input, or the logits'
    In,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
    /// Drawing column: 0 embeddings, 1 + 2l layer l's heads, 2 + 2l its MLP, last logits.
    pub column: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Receiver {
    /// Index into `nodes`.
    pub node: usize,
    pub port: Port,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Edge {
    /// Index into `senders`.
    pub sender: usize,
    /// Index into `receivers`.
    pub receiver: usize,
    /// `"L0H0 → L1H0.k"`
    pub name: String,
}

/// The graph of one model config.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// Node index of sender s.
    pub senders: Vec<usize>,
    pub receivers: Vec<Receiver>,
    /// Receiver-major: the edges into receiver r are `first[r]..first[r] + avail[r]`.
    pub edges: Vec<Edge>,
    /// Receiver r reads senders `0..avail[r]`.
    pub avail: Vec<usize>,
    first: Vec<usize>,
}

/// A circuit: which edges are in it (indexed as `Graph::edges`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Circuit {
    pub edges: Vec<bool>,
}

impl Circuit {
    pub fn full(g: &Graph) -> Self {
        Circuit {
            edges: vec![true; g.edges.len()],
        }
    }
    pub fn empty(g: &Graph) -> Self {
        Circuit {
            edges: vec![false; g.edges.len()],
        }
    }
    pub fn complement(&self) -> Self {
        Circuit {
            edges: self.edges.iter().map(|&e| !e).collect(),
        }
    }
    pub fn len(&self) -> usize {
        self.edges.iter().filter(|&&e| e).count()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Graph {
    /// The graph of a model with `n_layers` × `n_heads` heads, MLPs when `mlp`, and a
    /// position-embedding sender unless `shortformer`.
    pub fn new(n_layers: usize, n_heads: usize, mlp: bool, shortformer: bool) -> Self {
        let mut g = Graph {
            nodes: Vec::new(),
            senders: Vec::new(),
            receivers: Vec::new(),
            edges: Vec::new(),
            avail: Vec::new(),
            first: Vec::new(),
        };
        g.sender("embed", NodeKind::Embed, 0);
        if !shortformer {
            g.sender("pos_embed", NodeKind::PosEmbed, 0);
        }
        for layer in 0..n_layers {
            let before = g.senders.len();
            for head in 0..n_heads {
                let n = g.sender(
                    &format!("L{layer}H{head}"),
                    NodeKind::Head { layer, head },
                    1 + 2 * layer,
                );
                for port in [Port::Q, Port::K, Port::V] {
                    g.receiver(n, port, before);
                }
            }
            if mlp {
                let before = g.senders.len();
                let n = g.sender(
                    &format!("MLP{layer}"),
                    NodeKind::Mlp { layer },
                    2 + 2 * layer,
                );
                g.receiver(n, Port::In, before);
            }
        }
        let all = g.senders.len();
        g.nodes.push(Node {
            name: "logits".into(),
            kind: NodeKind::Logits,
            column: 1 + 2 * n_layers,
        });
        g.receiver(g.nodes.len() - 1, Port::In, all);
        g
    }

    /// The graph of a model config.
    pub fn of(cfg: &crate::model::ModelConfig) -> Self {
        let short = cfg.positional_embedding_type == crate::model::Positions::Shortformer;
        Graph::new(cfg.n_layers, cfg.n_heads, cfg.d_mlp.is_some(), short)
    }

    fn sender(&mut self, name: &str, kind: NodeKind, column: usize) -> usize {
        self.nodes.push(Node {
            name: name.into(),
            kind,
            column,
        });
        self.senders.push(self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    fn receiver(&mut self, node: usize, port: Port, avail: usize) {
        let suffix = match port {
            Port::Q => ".q",
            Port::K => ".k",
            Port::V => ".v",
            Port::In => "",
        };
        let name = format!("{}{suffix}", self.nodes[node].name);
        let r = self.receivers.len();
        self.first.push(self.edges.len());
        self.avail.push(avail);
        for s in 0..avail {
            let from = &self.nodes[self.senders[s]].name;
            self.edges.push(Edge {
                sender: s,
                receiver: r,
                name: format!("{from} → {name}"),
            });
        }
        self.receivers.push(Receiver { node, port, name });
    }

    /// The edge sender s → receiver r, if there is one.
    pub fn edge(&self, s: usize, r: usize) -> Option<usize> {
        (r < self.receivers.len() && s < self.avail[r]).then(|| self.first[r] + s)
    }

    /// The edge named `name` (as in `Edge::name`; `->` may stand for `→`).
    pub fn edge_named(&self, name: &str) -> Option<usize> {
        let want = name.replace("->", "→");
        let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        self.edges.iter().position(|e| norm(&e.name) == norm(&want))
    }

    /// The sender index of node n, if it sends.
    pub fn sender_of(&self, n: usize) -> Option<usize> {
        self.senders.iter().position(|&x| x == n)
    }

    /// Removes edges that cannot matter: edges into a node none of whose outgoing edges is
    /// in the circuit (repeated until nothing changes; the logits always count as used).
    pub fn prune_dangling(&self, c: &mut Circuit) {
        loop {
            let mut used = vec![false; self.nodes.len()];
            used[self.nodes.len() - 1] = true;
            for (e, edge) in self.edges.iter().enumerate() {
                if c.edges[e] {
                    used[self.senders[edge.sender]] = true;
                }
            }
            let mut changed = false;
            for (e, edge) in self.edges.iter().enumerate() {
                if c.edges[e] && !used[self.receivers[edge.receiver].node] {
                    c.edges[e] = false;
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }
}
