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
//!
//! **Neuron graph** ([`GraphOptions::neurons`], off by default): MLP l's output splits into
//! d_mlp senders `L{l}N{n}` (neuron n's output `post_n · W_out[n, :]`; the MLP's output is
//! their sum), each with its own edges to every later receiver. The MLP's input stays one
//! receiver `MLP{l}` (its input edges feed all its neurons), and the node `MLP{l}` stays in
//! the graph as that receiver; it sends nothing itself.

use serde::Serialize;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    Embed,
    PosEmbed,
    Head {
        layer: usize,
        head: usize,
    },
    Mlp {
        layer: usize,
    },
    /// one neuron of MLP `layer` (neuron graph only)
    Neuron {
        layer: usize,
        neuron: usize,
    },
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

/// How finely the graph splits the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GraphOptions {
    /// every MLP neuron is a sender of its own (MLP models only; otherwise no effect)
    pub neurons: bool,
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
        Graph::build(n_layers, n_heads, mlp.then_some(0), shortformer)
    }

    /// The neuron graph (see the module doc): MLPs of `d_mlp` neurons, each a sender.
    pub fn with_neurons(n_layers: usize, n_heads: usize, d_mlp: usize, shortformer: bool) -> Self {
        Graph::build(n_layers, n_heads, Some(d_mlp), shortformer)
    }

    /// `mlp`: None without MLPs, Some(0) an MLP as one sender, Some(M) M neuron senders.
    fn build(n_layers: usize, n_heads: usize, mlp: Option<usize>, shortformer: bool) -> Self {
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
            if let Some(d_mlp) = mlp {
                g.mlp(layer, d_mlp);
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

    /// MLP `layer`: one sender, or (`d_mlp` > 0) its node as a receiver only and d_mlp
    /// neuron senders after it.
    fn mlp(&mut self, layer: usize, d_mlp: usize) {
        let before = self.senders.len();
        let (name, kind, col) = (
            format!("MLP{layer}"),
            NodeKind::Mlp { layer },
            2 + 2 * layer,
        );
        let n = if d_mlp == 0 {
            self.sender(&name, kind, col)
        } else {
            self.nodes.push(Node {
                name,
                kind,
                column: col,
            });
            for neuron in 0..d_mlp {
                let kind = NodeKind::Neuron { layer, neuron };
                self.sender(&format!("L{layer}N{neuron}"), kind, col);
            }
            self.nodes.len() - d_mlp - 1
        };
        self.receiver(n, Port::In, before);
    }

    /// The graph of a model config.
    pub fn of(cfg: &crate::model::ModelConfig) -> Self {
        Graph::of_with(cfg, GraphOptions::default())
    }

    /// The graph of a model config, split as `opts` asks.
    pub fn of_with(cfg: &crate::model::ModelConfig, opts: GraphOptions) -> Self {
        let short = cfg.positional_embedding_type == crate::model::Positions::Shortformer;
        let mlp = cfg.d_mlp.map(|m| if opts.neurons { m } else { 0 });
        Graph::build(cfg.n_layers, cfg.n_heads, mlp, short)
    }

    /// Whether this is a neuron graph.
    pub fn has_neurons(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(n.kind, NodeKind::Neuron { .. }))
    }

    /// The node whose input a sender's node computes from: itself, or for a neuron its MLP.
    pub fn owner(&self, n: usize) -> usize {
        match self.nodes[n].kind {
            NodeKind::Neuron { layer, .. } => self
                .nodes
                .iter()
                .position(|x| x.kind == NodeKind::Mlp { layer })
                .expect("a neuron's MLP node is in the graph"),
            _ => n,
        }
    }

    /// The senders of MLP `layer`'s neurons, in neuron order (empty unless a neuron graph).
    pub fn neuron_senders(&self, layer: usize) -> Vec<usize> {
        (0..self.senders.len())
            .filter(|&s| {
                matches!(self.nodes[self.senders[s]].kind, NodeKind::Neuron { layer: l, .. } if l == layer)
            })
            .collect()
    }

    /// The edges out of sender s.
    pub fn edges_from(&self, s: usize) -> Vec<usize> {
        (0..self.receivers.len())
            .filter_map(|r| self.edge(s, r))
            .collect()
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
        let owner: Vec<usize> = self.senders.iter().map(|&n| self.owner(n)).collect();
        loop {
            let mut used = vec![false; self.nodes.len()];
            used[self.nodes.len() - 1] = true;
            for (e, edge) in self.edges.iter().enumerate() {
                if c.edges[e] {
                    used[owner[edge.sender]] = true;
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
