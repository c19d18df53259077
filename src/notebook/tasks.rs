//! Each task's data generator in Python, for the notebook: the same token layout as
//! [`crate::tasks`] (its own numpy RNG), plus `answer_sources(tokens, p)` with the
//! meaning of [`TaskSpec::answer_sources`]. A new task adds one function here and one arm
//! to [`task_python`].

use crate::tasks::{permutations, TaskSpec};

/// The Python cell that defines the task: `VOCAB`, `PRED_POSITIONS`, `PROMPT_LEN`,
/// `VALUE_TOKENS` (from toyformer), then the task's own `make_batch(rng, batch)` (B, T) and
/// `answer_sources(tokens, p)`.
pub fn task_python(task: &TaskSpec) -> String {
    let json = |v: serde_json::Value| v.to_string();
    let ids = task.value_tokens();
    let common = format!(
        "VOCAB = json.loads(r'''{}''')  # token id -> label\n\
         PRED_POSITIONS = {}  # the positions whose logits are scored\n\
         PRED_SET = set(PRED_POSITIONS)\n\
         PROMPT_LEN = {}  # tokens given before the model answers\n\
         VALUE_TOKENS = ({}, {})  # token ids that carry values (copying scores are taken over these)\n\n\n\
         def targets(tokens):\n    \
         \"\"\"(B, P) the target of each scored position: the next token (tasks sampled from a table\n    \
         take theirs from the table).\"\"\"\n    \
         return tokens[:, [p + 1 for p in PRED_POSITIONS]]\n\n\n",
        json(serde_json::json!(task.vocab())),
        json(serde_json::json!(task.pred_positions())),
        task.prompt_len(),
        ids.start,
        ids.end
    );
    let own = match *task {
        TaskSpec::Sort { n, max_num } => sort_python(n, max_num),
        TaskSpec::Permutations { n, .. } => permutations_python(n),
        TaskSpec::ApplyPerm { k, max_int } => apply_perm_python(k, max_int),
        _ => table_python(task),
    };
    common + &own
}

fn sort_python(n: usize, max_num: usize) -> String {
    format!(
        r#"N, MAX_NUM = {n}, {max_num}
BOS, MID = MAX_NUM, MAX_NUM + 1


def make_batch(rng, batch):
    """[BOS, a_1..a_n, MID, sorted(a)]: n values uniform in 0..MAX_NUM, duplicates allowed."""
    a = rng.integers(0, MAX_NUM, size=(batch, N))
    col = lambda v: np.full((batch, 1), v)
    return np.concatenate([col(BOS), a, col(MID), np.sort(a, axis=1)], axis=1)


def answer_sources(tokens, p):
    """Positions 1..N of the unsorted list that hold the value predicted at p."""
    if p not in PRED_SET:
        return []
    return [q for q in range(1, N + 1) if tokens[q] == tokens[p + 1]]
"#
    )
}

fn permutations_python(n: usize) -> String {
    format!(
        r#"import itertools

N = {n}
BEG, SPACE, PERIOD, FIRST_CHAR, N_CHARS = {}, {}, {}, {}, {}


def make_batch(rng, batch):
    """"> " + every permutation of N distinct characters (itertools order, vocabulary order of
    the set) joined by spaces + ".". Draws from every character set (toyformer may hold some
    out of training)."""
    rows = []
    for _ in range(batch):
        chars = sorted(FIRST_CHAR + rng.choice(N_CHARS, size=N, replace=False))
        row = [BEG, SPACE]
        for i, perm in enumerate(itertools.permutations(chars)):
            row += ([SPACE] if i else []) + list(perm)
        rows.append(row + [PERIOD])
    return np.array(rows)


def answer_sources(tokens, p):
    """Where the character predicted at p can be copied from: its place in the first term and in
    the previous term (both visible at p). Empty for a space or the period, and inside the first term."""
    target = tokens[p + 1]
    if p not in PRED_SET or target < FIRST_CHAR or p + 1 < 2 + N:
        return []
    find = lambda start: [q for q in range(start, start + N) if q <= p and tokens[q] == target]
    term = (p + 1 - 2) // (N + 1)
    return sorted(set(find(2) + (find(2 + (term - 1) * (N + 1)) if term >= 2 else [])))
"#,
        permutations::BEG,
        permutations::SPACE,
        permutations::PERIOD,
        permutations::FIRST_CHAR,
        permutations::N_CHARS
    )
}

fn apply_perm_python(k: usize, max_int: usize) -> String {
    format!(
        r#"K, MAX_INT = {k}, {max_int}
END, MID, BOS = MAX_INT, MAX_INT + 1, MAX_INT + 2


def make_batch(rng, batch):
    """[BOS, a_0..a_(K-1), MID, idx_0..idx_(K-1), END, a_idx_0..a_idx_(K-1)]: a uniform in 0..MAX_INT,
    idx a uniformly random permutation of 0..K."""
    a = rng.integers(0, MAX_INT, size=(batch, K))
    idx = np.array([rng.permutation(K) for _ in range(batch)]).reshape(batch, K)
    col = lambda v: np.full((batch, 1), v)
    return np.concatenate([col(BOS), a, col(MID), idx, col(END), np.take_along_axis(a, idx, axis=1)], axis=1)


def answer_sources(tokens, p):
    """Position 1 + idx_i of the value a_idx_i that the answer at p copies."""
    if p not in PRED_SET:
        return []
    j = tokens[K + 2 + p - (2 * K + 2)]
    return [1 + int(j)] if j < K else []
"#
    )
}

/// Sequences of the catalogue's tasks drawn by toyformer for [`table_python`]: enough for the
/// notebook's fresh-accuracy check without writing each generator in Python twice.
const TABLE_ROWS: usize = 512;

/// A task without a Python generator of its own (the catalogue's): `make_batch` draws rows
/// from a table of [`TABLE_ROWS`] sequences that toyformer sampled (seed 9, step 0; the
/// training split of a finite dataset), and `answer_sources` looks each one up in a table that
/// toyformer computed with [`TaskSpec::answer_sources`].
fn table_python(task: &TaskSpec) -> String {
    let t = task.seq_len();
    let tokens = task.batch(9, 0, TABLE_ROWS);
    let rows: Vec<&[u32]> = tokens.chunks(t).collect();
    let targets: Vec<Vec<u32>> = rows.iter().map(|r| task.targets(r)).collect();
    let sources: Vec<Vec<Vec<usize>>> = rows
        .iter()
        .map(|r| {
            (0..t)
                .map(|p| task.answer_sources(r, p))
                .collect::<Vec<_>>()
        })
        .collect();
    format!(
        r#"# {name}: sequences sampled by toyformer (its own generator is in src/tasks of toyformer)
TABLE = np.array(json.loads('{rows}'), dtype=np.int64)  # ({n}, T)
SOURCES = {{tuple(r): s for r, s in zip(TABLE.tolist(), json.loads('{sources}'))}}
TARGETS = {{tuple(r): t for r, t in zip(TABLE.tolist(), json.loads('{targets}'))}}


def make_batch(rng, batch):
    """Rows drawn with replacement from toyformer's sample of this task."""
    return TABLE[rng.integers(0, len(TABLE), size=batch)]


def answer_sources(tokens, p):
    """The positions whose token the answer at p copies (toyformer's answer_sources)."""
    if p not in PRED_SET:
        return []
    return SOURCES.get(tuple(int(x) for x in tokens), [[]] * (p + 1))[p]


def targets(tokens):
    """(B, P) the target of each scored position, as toyformer's task gives it (its table)."""
    return np.array([TARGETS[tuple(int(x) for x in r)] for r in tokens], dtype=np.int64)
"#,
        name = task.name(),
        n = rows.len(),
        rows = serde_json::json!(rows),
        sources = serde_json::json!(sources),
        targets = serde_json::json!(targets),
    )
}
