// Ready experiments (the two seed documents, the collection's problems, grokking), as links: choosing one opens its fragment like any
// shared link (the page reloads on a new fragment, shows what the link sets and offers to train).
// The run that was open stays in the Runs cell (autosave); while one trains, a preset asks before
// it replaces it and saves it first, so nothing is lost.
// Each fragment uses only keys of the property table (state.js); tests/browser/sweep.test.mjs checks
// that they decode without notes.

/** @type {{id: string, name: string, title: string, fragment: string}[]} */
export const PRESETS = [
  {
    id: 'seed-000',
    name: 'Seed 000: permutations',
    title: 'Write out all 24 permutations of 4 characters: the seed-000 model (1 layer, 1 head, d_model 128, d_head 64, '
      + 'LayerNorm, attention only), as docs/FINDINGS.md trains it; open the analysis cells to see the positional copy',
    fragment: 'v=1&task=permutations&perm_n=4&n_layers=1&n_heads=1&d_model=128&d_head=64&ln=true&mlp=false'
      + '&steps=1500&batch_size=32&lr=0.001&schedule=constant&weight_decay=0.01&grad_clip=1&seed=0',
  },
  {
    id: 'seed-003',
    name: 'Seed 003: sorting',
    title: 'Sort 10 numbers below 50: the seed-003 model (1 layer, 1 head, d_model = d_head = 128, no LayerNorm, '
      + 'attention only, batch 256); about 5000 steps to 99% token accuracy',
    fragment: 'v=1&task=sort&sort_n=10&max_num=50&n_layers=1&n_heads=1&d_model=128&d_head=128&ln=false&mlp=false'
      + '&steps=6000&batch_size=256&lr=0.001&schedule=constant&weight_decay=0.01&grad_clip=1&seed=0',
  },
  // The mech-interp-practice collection's problems, with their models' configs (tasks: issue 13).
  {
    id: 'majority',
    name: 'Majority element',
    title: 'Name the element filling 6 of 10 positions: the collection model\'s config (1 layer, 1 head, '
      + 'd_model = d_head = 64, attention only)',
    fragment: 'v=1&task=majority&n_layers=1&n_heads=1&d_model=64&d_head=64&ln=false&mlp=false'
      + '&steps=3000&batch_size=256&lr=0.001&schedule=constant&weight_decay=0.01&grad_clip=1&seed=0',
  },
  {
    id: 'min-of-two',
    name: 'Min of two ints',
    title: 'min(a, b) over all 40,000 pairs of 0..199, 80% training: the collection model\'s config '
      + '(1 layer, 1 head, d_model = d_head = 32, attention only)',
    fragment: 'v=1&task=min-of-two&n_layers=1&n_heads=1&d_model=32&d_head=32&ln=false&mlp=false'
      + '&steps=3000&batch_size=256&lr=0.001&schedule=constant&weight_decay=0.01&grad_clip=1&seed=0',
  },
  {
    id: 'mod-sub',
    name: 'Modular subtraction',
    title: '(a − b) mod 113 over all 12,769 pairs, 30% training, full batch: the collection model\'s config '
      + '(1 layer, 2 heads, d_model 128, d_head 64, MLP 512 ReLU, AdamW lr 1e-3, weight decay 1, β2 0.98); '
      + 'slow on a CPU: the Grokking preset is the small version',
    fragment: 'v=1&task=mod-sub&n_layers=1&n_heads=2&d_model=128&d_head=64&ln=false&mlp=true&d_mlp=512&act_fn=relu'
      + '&steps=10000&batch_size=3831&lr=0.001&schedule=constant&weight_decay=1&beta2=0.98&grad_clip=1&seed=0',
  },
  {
    id: 'array-index',
    name: 'Array indexing',
    title: 'Write an element into a list of 3: the collection model\'s widths (2 layers, 1 head, '
      + 'd_model = d_head = 128, attention only, shortformer positions: W_pos enters queries and keys only)',
    fragment: 'v=1&task=array-index&n_layers=2&n_heads=1&d_model=128&d_head=128&ln=false&mlp=false'
      + '&steps=3000&batch_size=256&lr=0.001&schedule=constant&weight_decay=0.01&grad_clip=1&seed=0',
  },
  {
    id: 'grokking',
    name: 'Grokking',
    title: '(a + b) mod 53, half the 2,809 pairs training, full batch, weight decay 1: train accuracy is 1 '
      + 'by step 500 while test accuracy sits near 0.5, then climbs to 0.94 by step 5000 and 0.99 by 6000 '
      + '(about a minute with the command-line CPU engine; in the page 7 minutes on a shared 2-core machine, test accuracy 0.992 at '
      + 'step 6000); the Train cell plots the train and test splits\' curves',
    fragment: 'v=1&task=mod-add&mod_add_p=53&mod_add_frac_train=0.5&n_layers=1&n_heads=2&d_model=64&d_head=32'
      + '&ln=false&mlp=true&d_mlp=256&act_fn=relu&steps=6000&batch_size=1405&lr=0.001&schedule=constant'
      + '&weight_decay=1&beta2=0.98&grad_clip=1&seed=0',
  },
];

/**
 * Fills `nav` with one link per preset. While a run trains (`training()` is true) a preset asks
 * first: the first click turns the pill into "replace the training run?" for a few seconds; a
 * second click saves the run (`save()`, resolving false when it could not) into the Runs cell and
 * then opens the preset. Otherwise a preset is a plain link.
 */
export function renderPresets(nav, { training = () => false, save = async () => true } = {}) {
  for (const p of PRESETS) {
    const a = document.createElement('a');
    a.href = `#${p.fragment}`;
    a.textContent = p.name;
    a.title = p.title;
    a.className = 'preset';
    a.dataset.preset = p.id;
    let timer = null;
    const reset = () => { a.classList.remove('confirm'); a.textContent = p.name; };
    a.addEventListener('click', async (e) => {
      if (!training()) return; // follow the link
      e.preventDefault();
      clearTimeout(timer);
      if (!a.classList.contains('confirm')) {
        a.classList.add('confirm');
        a.textContent = `${p.name}: replace the training run? Click again`;
        timer = setTimeout(reset, 5000);
        return;
      }
      a.textContent = `${p.name}: saving the run…`;
      if (await save()) {
        if (location.hash === `#${p.fragment}`) reset(); // already these settings: nothing to open
        else location.hash = p.fragment; // the page opens it like any link (share.js)
      } else {
        a.textContent = `${p.name}: the run could not be saved (see Runs); not replaced`;
        timer = setTimeout(reset, 8000);
      }
    });
    nav.append(a);
  }
}
