// Generated from the Rust task registry (src/tasks/mod.rs) by
// `cargo run --release --example task_rows > www/js/task-rows.js`; a native test checks
// that it is current. Do not edit by hand.
export const CATALOGUE = [
  {
    "description": "Copy a list with the element at a given index replaced.",
    "finite": false,
    "name": "array-index",
    "params": [
      {
        "default": 3.0,
        "hint": "list length",
        "key": "array_index_n",
        "label": "n",
        "max": 509.0,
        "min": 1.0,
        "param": "n",
        "type": "int"
      },
      {
        "default": 50.0,
        "hint": "values are 0..max_num-1",
        "key": "array_index_max_num",
        "label": "max_num",
        "max": 65534.0,
        "min": 1.0,
        "param": "max_num",
        "type": "int"
      }
    ]
  },
  {
    "description": "Name the element that fills k of the n positions (a strict majority).",
    "finite": false,
    "name": "majority",
    "params": [
      {
        "default": 10.0,
        "hint": "list length",
        "key": "majority_n",
        "label": "n",
        "max": 1021.0,
        "min": 1.0,
        "param": "n",
        "type": "int"
      },
      {
        "default": 6.0,
        "hint": "copies of the majority element (> n/2)",
        "key": "majority_k",
        "label": "k",
        "max": 1021.0,
        "min": 1.0,
        "param": "k",
        "type": "int"
      },
      {
        "default": 50.0,
        "hint": "values are 0..max_num-1",
        "key": "majority_max_num",
        "label": "max_num",
        "max": 65533.0,
        "min": 1.0,
        "param": "max_num",
        "type": "int"
      }
    ]
  },
  {
    "description": "The smaller of two numbers, over all n² pairs with a train/test split.",
    "finite": true,
    "name": "min-of-two",
    "params": [
      {
        "default": 200.0,
        "hint": "values are 0..n-1",
        "key": "min_of_two_n",
        "label": "n",
        "max": 2000.0,
        "min": 2.0,
        "param": "n",
        "type": "int"
      },
      {
        "default": 0.8,
        "hint": "fraction of the pairs that train",
        "key": "min_of_two_frac_train",
        "label": "frac_train",
        "max": 0.99,
        "min": 0.01,
        "param": "frac_train",
        "type": "float"
      },
      {
        "default": 0.0,
        "hint": "seed of the train/test split",
        "key": "min_of_two_split_seed",
        "label": "split_seed",
        "max": 4294967295.0,
        "min": 0.0,
        "param": "split_seed",
        "type": "int"
      }
    ]
  },
  {
    "description": "(a − b) mod p over all p² pairs, a train/test split: the grokking set-up.",
    "finite": true,
    "name": "mod-sub",
    "params": [
      {
        "default": 113.0,
        "hint": "the modulus",
        "key": "mod_sub_p",
        "label": "p",
        "max": 2003.0,
        "min": 2.0,
        "param": "p",
        "type": "int"
      },
      {
        "default": 0.3,
        "hint": "fraction of the pairs that train",
        "key": "mod_sub_frac_train",
        "label": "frac_train",
        "max": 0.99,
        "min": 0.01,
        "param": "frac_train",
        "type": "float"
      },
      {
        "default": 0.0,
        "hint": "seed of the train/test split",
        "key": "mod_sub_split_seed",
        "label": "split_seed",
        "max": 4294967295.0,
        "min": 0.0,
        "param": "split_seed",
        "type": "int"
      }
    ]
  },
  {
    "description": "(a + b) mod p over all p² pairs, a train/test split: the grokking set-up.",
    "finite": true,
    "name": "mod-add",
    "params": [
      {
        "default": 113.0,
        "hint": "the modulus",
        "key": "mod_add_p",
        "label": "p",
        "max": 2003.0,
        "min": 2.0,
        "param": "p",
        "type": "int"
      },
      {
        "default": 0.3,
        "hint": "fraction of the pairs that train",
        "key": "mod_add_frac_train",
        "label": "frac_train",
        "max": 0.99,
        "min": 0.01,
        "param": "frac_train",
        "type": "float"
      },
      {
        "default": 0.0,
        "hint": "seed of the train/test split",
        "key": "mod_add_split_seed",
        "label": "split_seed",
        "max": 4294967295.0,
        "min": 0.0,
        "param": "split_seed",
        "type": "int"
      }
    ]
  },
  {
    "description": "Continue a repeated sequence of random tokens (induction heads).",
    "finite": false,
    "name": "induction",
    "params": [
      {
        "default": 10.0,
        "hint": "length of the random half",
        "key": "induction_k",
        "label": "k",
        "max": 511.0,
        "min": 2.0,
        "param": "k",
        "type": "int"
      },
      {
        "default": 50.0,
        "hint": "random tokens are 0..n_tokens-1",
        "key": "induction_n_tokens",
        "label": "n_tokens",
        "max": 65535.0,
        "min": 2.0,
        "param": "n_tokens",
        "type": "int"
      }
    ]
  },
  {
    "description": "Write a list backwards.",
    "finite": false,
    "name": "reverse",
    "params": [
      {
        "default": 6.0,
        "hint": "list length",
        "key": "reverse_n",
        "label": "n",
        "max": 511.0,
        "min": 1.0,
        "param": "n",
        "type": "int"
      },
      {
        "default": 50.0,
        "hint": "values are 0..max_num-1",
        "key": "reverse_max_num",
        "label": "max_num",
        "max": 65534.0,
        "min": 1.0,
        "param": "max_num",
        "type": "int"
      }
    ]
  },
  {
    "description": "Add two n-digit numbers (ARENA's monthly problem 'sum').",
    "finite": false,
    "name": "arena-sum",
    "params": [
      {
        "default": 4.0,
        "hint": "digits per number",
        "key": "arena_sum_num_digits",
        "label": "num_digits",
        "max": 18.0,
        "min": 1.0,
        "param": "num_digits",
        "type": "int"
      }
    ]
  },
  {
    "description": "Name the token one position earlier, with no positional embeddings (rederive positions).",
    "finite": false,
    "name": "previous-token",
    "params": [
      {
        "default": 9.0,
        "hint": "tokens after BOS",
        "key": "previous_token_n",
        "label": "n",
        "max": 1023.0,
        "min": 1.0,
        "param": "n",
        "type": "int"
      },
      {
        "default": 100.0,
        "hint": "BOS's id; tokens are 0..=max_num",
        "key": "previous_token_max_num",
        "label": "max_num",
        "max": 65534.0,
        "min": 1.0,
        "param": "max_num",
        "type": "int"
      }
    ]
  },
  {
    "description": "Say whether the list reads the same backwards (ARENA's monthly problem 'palindromes').",
    "finite": false,
    "name": "arena-palindromes",
    "params": [
      {
        "default": 10.0,
        "hint": "half the list length",
        "key": "arena_palindromes_half_length",
        "label": "half_length",
        "max": 511.0,
        "min": 1.0,
        "param": "half_length",
        "type": "int"
      },
      {
        "default": 30.0,
        "hint": "values are 0..=max_value",
        "key": "arena_palindromes_max_value",
        "label": "max_value",
        "max": 65532.0,
        "min": 1.0,
        "param": "max_value",
        "type": "int"
      }
    ]
  }
];
