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
  },
  {
    "description": "Your own data: a task defined by a file (JSON lines or text).",
    "finite": true,
    "name": "custom",
    "params": [
      {
        "default": 0.8,
        "hint": "fraction of the examples that train (unless the file marks splits)",
        "key": "custom_frac_train",
        "label": "frac_train",
        "max": 0.99,
        "min": 0.01,
        "param": "frac_train",
        "type": "float"
      },
      {
        "default": 0.0,
        "hint": "seed of the train/test split",
        "key": "custom_split_seed",
        "label": "split_seed",
        "max": 1000000.0,
        "min": 0.0,
        "param": "split_seed",
        "type": "int"
      },
      {
        "default": 0.0,
        "hint": "sequence length; 0 = the longest line",
        "key": "custom_n_ctx",
        "label": "n_ctx",
        "max": 1024.0,
        "min": 0.0,
        "param": "n_ctx",
        "type": "int"
      }
    ]
  }
];

// What the analysis cells say about each task (Task::analysis_notes).
export const NOTES = {
  "apply-perm": {
    "attention": "The position predicting ans_i must find idx_i (at a fixed offset) and then the value a_{idx_i}: look for attention on the list position the index names.",
    "interventions": "Patch a changed index: the answer moves to another list element; the heads whose patching restores it read the index.",
    "ov": "The head that fetches a_{idx_i} copies it: a bright diagonal on the value tokens.",
    "qk": "The value is chosen by position: the token·token panel of the value tokens is flat, the relevant structure sits in the position panels (and, with two layers, in what an earlier head writes).",
    "scores": "The attention on the answer is the fraction of attention on a_{idx_i}; a copying head with a high value is the one that applies the permutation.",
    "timeline": "Look for the step where attention on the answer rises: before it the model can only guess a value from the list."
  },
  "arena-palindromes": {
    "attention": "Only END is scored. Look for heads that pair each position with its mirror (position i with 2h+1−i) in layer 0, and for END reading the positions where a pair disagrees in layer 1.",
    "interventions": "Patch one value of a palindrome so it no longer matches its mirror: the answer should flip, and patching the layer-0 head's output at that position restores it.",
    "ov": "This is a yes/no label task: there is no copying diagonal. The OV maps write evidence for “no” when the attended value differs from its mirror's.",
    "qk": "The position·position panel should carry an anti-diagonal (mirror pairs); values matter only through whether a pair is equal.",
    "scores": "Copying scores do not apply to a label task; read the DLA bars (which heads push “yes”/“no”) and the composition paths from layer 0 into the head that writes the answer.",
    "timeline": "Expect the easy cases (many pairs differ) to be learnt first and the near-palindromes (one mismatched pair) last; see when the mirror pattern of layer 0 forms."
  },
  "arena-sum": {
    "attention": "The position predicting c_i needs a_i and b_i and whether the lower digits carry: look for heads attending to the two digits of the same place, and to the next place.",
    "interventions": "Patch one digit of a: the answer's digit at that place changes, and the one above it when the carry changes.",
    "ov": "The answer is (a_i + b_i + carry) mod 10, not a copy: do not expect a copying diagonal; the MLP (when the model has one) computes the sum.",
    "qk": "Which digits to read is a matter of position: the position panels carry the rule, the token·token panel little.",
    "scores": "Expect low OV diagonals and a large share of the DLA written by the MLP; the heads' job is to move digits.",
    "timeline": "Digits without a carry are learnt first; the carry comes later, with a second drop of the loss."
  },
  "array-index": {
    "attention": "The position predicting b_j should attend to a_j, except when j = idx, where it should attend to elt. Pick an output position and compare inputs whose idx differs.",
    "interventions": "Patch a changed idx: the outputs at the old and new index change, and the heads whose patching restores them are the ones that read idx.",
    "ov": "The head that fetches a_j or elt copies it: a bright diagonal on the value tokens.",
    "qk": "Choosing between a_j and elt needs idx: with two layers, look for a first-layer head that moves idx (or whether it equals j) into the residual stream that the copying head's query or keys read (the composition scores in the CLI's circuits report).",
    "scores": "Expect one copying head (OV diagonal near 100%, attention on the answer near 1) carrying most of the DLA, with an earlier head's contribution reaching it through composition.",
    "timeline": "The copy of a_j is learnt first (it is right for n − 1 of the n outputs); the overwrite at idx comes later, with a second drop of the loss."
  },
  "custom": {
    "attention": "Look at the positions whose logits are scored: which earlier positions does each head read, and is it the position holding the answer (outlined)?",
    "interventions": "Ablate one head at a time: the heads whose removal costs the most accuracy are the ones the algorithm needs.",
    "ov": "A bright diagonal means the head copies the token it attends to; anything else means it writes a function of that token.",
    "qk": "A structured token·token panel means the head chooses keys by content; structure in the position panels means it chooses them by position.",
    "scores": "Heads with a high attention on the answer and a high OV diagonal copy the answer; the DLA bars say which components write the correct logit.",
    "timeline": "Watch for the step where the scores of the heads that matter change: the loss usually drops at the same time."
  },
  "induction": {
    "attention": "Two heads in sequence: a previous-token head (layer 0) attends from each position to the one before it, and an induction head (layer 1) attends from r_i in the repeat to the token after r_i's first occurrence.",
    "interventions": "Ablating the previous-token head breaks the induction head too: the loss rises as much as when the induction head itself is removed.",
    "ov": "The induction head copies the token it attends to: a bright diagonal.",
    "qk": "The induction head's keys are chosen by what the previous-token head wrote (K-composition), not by the embeddings: its token·token panel through the embeddings alone is weak.",
    "scores": "Expect a layer-1 head with attention on the answer near 1 and an OV diagonal near 100%, carrying most of the DLA, and a layer-0 head whose attention sits one position back.",
    "timeline": "Induction heads form in a phase change: the loss on the repeat drops suddenly when the attention on the answer jumps."
  },
  "majority": {
    "attention": "At END the head can spread its attention evenly over the list: the majority element, on k of the n positions, then gets k/n of it. Look at END's row.",
    "interventions": "Patching changes one list value; with k > n/2 copies of m the answer rarely changes, so expect small patching effects except where a copy of m is overwritten.",
    "ov": "The OV circuit copies (a bright diagonal): averaging the copies of every list element makes the most frequent one the largest logit.",
    "qk": "With a fixed query (END), the token·token panel matters only through END's row; a flat row over the value tokens means even attention, a raised diagonal means the head prefers repeated tokens.",
    "scores": "Attention on the answer near k/n means an even average; above k/n the head also prefers the repeated token. The OV diagonal should be near 100%.",
    "timeline": "The OV copying score rises with the accuracy; the attention pattern hardly needs to change."
  },
  "min-of-two": {
    "attention": "At '=' the head should attend to whichever of a and b is smaller, whatever their order. Compare a < b with a > b.",
    "interventions": "Patch the smaller value to a larger one: the answer switches to the other operand, carried by the head's output at '='.",
    "ov": "The head copies what it attends to: a bright diagonal on the value tokens.",
    "qk": "The query is always '=', so read its row of the token·token panel: the score should fall as the key's value grows, so the smaller value wins the softmax.",
    "scores": "Expect attention on the answer near 1 and an OV diagonal near 100%: one head that finds the minimum by its key and copies it.",
    "timeline": "A finite dataset: the Train cell plots train and test curves; min-of-two generalises as it learns (the test curve follows the train curve)."
  },
  "mod-add": {
    "attention": "At '=' the attention splits between a and b (roughly half each): the head moves both operands to the last position, where the MLP combines them.",
    "interventions": "Ablating a head breaks the answer (the MLP needs both operands); patching changes one operand and moves the answer by the same amount.",
    "ov": "Not a copying circuit (the OV diagonal is near chance, 1/p): the embeddings and the OV circuit carry a few Fourier frequencies cos(wa), sin(wa) with w = 2πk/p (Nanda et al. 2023).",
    "qk": "The query is always '='; the interesting structure is not in QK: the head's keys need only make the two operands get comparable weight.",
    "scores": "Expect low OV diagonals and most of the DLA from the MLP, which forms cos(w(a+b)) and sin(w(a+b)) from products of the operands' waves.",
    "timeline": "Grokking: the Train cell plots train and test curves; train accuracy reaches 1 early by memorising, and test accuracy rises much later as weight decay shrinks the memorising weights."
  },
  "mod-sub": {
    "attention": "At '=' (for a − b the order matters) the attention splits between a and b (roughly half each): the head moves both operands to the last position, where the MLP combines them.",
    "interventions": "Ablating a head breaks the answer (the MLP needs both operands); patching changes one operand and moves the answer by the same amount.",
    "ov": "Not a copying circuit (the OV diagonal is near chance, 1/p): the embeddings and the OV circuit carry a few Fourier frequencies cos(wa), sin(wa) with w = 2πk/p (Nanda et al. 2023).",
    "qk": "The query is always '='; the interesting structure is not in QK: the head's keys need only make the two operands get comparable weight.",
    "scores": "Expect low OV diagonals and most of the DLA from the MLP, which forms cos(w(a−b)) and sin(w(a−b)) from products of the operands' waves.",
    "timeline": "Grokking: the Train cell plots train and test curves; train accuracy reaches 1 early by memorising, and test accuracy rises much later as weight decay shrinks the memorising weights."
  },
  "permutations": {
    "attention": "After the first term every character is determined: look for heads that attend to the same slot of the previous term(s) and to the first term's characters, which say which characters are in play.",
    "interventions": "Patch a changed character of the first term: the positions that must change with it show which heads carry the character sets forward.",
    "ov": "Heads that move characters copy them (a diagonal over the character tokens); a head reading the term's structure writes position or separator information instead.",
    "qk": "Position panels matter here: a head that reads the previous term attends n + 1 positions back (one term and its space).",
    "scores": "The first term is random (its loss cannot fall below ln of the choices); algorithm accuracy counts only the positions after it.",
    "timeline": "The first term's loss stays high forever; watch the algorithm accuracy, which rises term by term."
  },
  "previous-token": {
    "attention": "Each scored position reads the token one place back. With positions off the model must first find where it is: layer 0 attends to BOS (whose share shrinks as the position grows), and layer 1 uses that to attend to position −1.",
    "interventions": "Ablate the layer-0 head: layer 1 loses its sense of position and accuracy falls most at late positions, which are far from BOS.",
    "ov": "The layer-1 head copies what it attends to: a bright diagonal over the whole vocabulary (BOS included).",
    "qk": "There is no position panel to read (positions are off): the token·token panel should be flat, and any preference for position −1 must come through layer 0's output (K-composition).",
    "scores": "Expect layer-1 attention on position −1 well above uniform, a copying OV, and layer-0 attention on BOS; the Task analyses cell checks exactly this hypothesis.",
    "timeline": "Watch layer 0's attention on BOS form before layer 1's attention on position −1 sharpens; the later positions learn last."
  },
  "reverse": {
    "attention": "The position predicting the i-th output reads a_{n-i+1}, the mirrored input: the pattern from the outputs onto the list is an anti-diagonal, chosen by position, not by value.",
    "interventions": "Patch one list value: only the one output that mirrors it changes, restored by the head's output at that position.",
    "ov": "The head copies what it attends to: a bright diagonal on the value tokens.",
    "qk": "The position·position panel carries the rule (each output position prefers its mirror in the list); the token·token panel should be nearly flat.",
    "scores": "Expect attention on the answer near 1, an OV diagonal near 100%, and a QK offset without structure (values do not matter).",
    "timeline": "Watch the attention on the answer rise as the position pattern sharpens; the loss falls with it."
  },
  "sort": {
    "attention": "At MID and at each sorted output the head attends to the unsorted list (a1…an), to the smallest value at or just above the current token, and hardly to the positions after MID.",
    "interventions": "Ablating the sorting head leaves the model guessing; patching after changing one list value restores the clean answer at the head's output of the positions that read that value.",
    "ov": "The sorter's OV circuit copies: a bright diagonal on every value token, so attending to v raises the logit of v.",
    "qk": "The token·token panel has its largest values just right of the diagonal: a query holding v prefers keys holding values slightly above v, the next element of the sorted list. The position panels show the columns after MID avoided.",
    "scores": "Expect the QK offset above the query, mostly +1, an OV diagonal near 100% and most of the attention from the outputs on the position holding the answer.",
    "timeline": "Watch for the step where the OV copying score and the attention on the answer rise: the loss drops at the same time (a phase change)."
  }
};
