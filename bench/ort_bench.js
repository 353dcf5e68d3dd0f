#!/usr/bin/env node
// ONNX Runtime baseline worker for the benchmarks.
//
//   NODE_PATH=bench/out/node/node_modules node bench/ort_bench.js --model bench/out/bert-base.onnx
//
// npm onnxruntime-node (CPU execution provider), installed with
//   ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix bench/out/node onnxruntime-node
// Session: graphOptimizationLevel 'all', intraOpNumThreads 2, interOpNumThreads 1,
// sequential execution. Speaks the line protocol of bench/run.py: one JSON reply
// line after loading, then one per stdin command:
//   run SHAPE ITERS ATTN   times ITERS session.run calls of a padded batch (ragged
//                          shapes padded to the longest, with an attention mask);
//                          ATTN must be -1
//   check PATH             last_hidden_state of the check batch against
//                          encoder_bench's dump, real tokens only
//   quit
'use strict';

const fs = require('fs');
const readline = require('readline');
const ort = require('onnxruntime-node');

// Same as bench/bench_common.h: Shapes() and TokenId().
const SHAPES = {
  '1x16': [16], '1x128': [128], '8x128': Array(8).fill(128),
  '32x128': Array(32).fill(128), '8x512': Array(8).fill(512),
  'ragged': [16, 32, 48, 64, 80, 96, 112, 128],
};

function tokenId(b, t, n) {
  if (t === 0) return 101;
  if (t === n - 1) return 102;
  return 1000 + (b * 1000003 + t * 7919 + 12345) % 29522;
}

// The model's input names: DistilBERT's export has no token_type_ids.
let inputNames = null;

// Padded (B, T) int64 feeds, those of inputNames.
function feeds(seqs) {
  const bsz = seqs.length;
  const t = Math.max(...seqs.map((s) => s.length));
  const ids = new BigInt64Array(bsz * t);
  const mask = new BigInt64Array(bsz * t);
  const types = new BigInt64Array(bsz * t);
  seqs.forEach((s, b) => s.forEach((id, i) => {
    ids[b * t + i] = BigInt(id);
    mask[b * t + i] = 1n;
  }));
  const dims = [bsz, t];
  const all = {
    input_ids: new ort.Tensor('int64', ids, dims),
    attention_mask: new ort.Tensor('int64', mask, dims),
    token_type_ids: new ort.Tensor('int64', types, dims),
  };
  return Object.fromEntries(inputNames.map((n) => [n, all[n]]));
}

function shapeFeeds(lengths) {
  return feeds(lengths.map((n, b) => Array.from({length: n}, (_, t) => tokenId(b, t, n))));
}

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function check(session, path) {
  const meta = JSON.parse(fs.readFileSync(path + '.json', 'utf8'));
  const buf = fs.readFileSync(path + '.hidden.f32');
  const ref = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const out = await session.run(feeds(meta.token_ids));
  const hid = out.last_hidden_state;  // (B, T, H)
  const [, t, h] = hid.dims;
  let k = 0, maxd = 0, dot = 0, na = 0, nb = 0;
  meta.lengths.forEach((n, b) => {
    for (let i = 0; i < n * h; ++i, ++k) {
      const a = hid.data[b * t * h + i], r = ref[k];
      maxd = Math.max(maxd, Math.abs(a - r));
      dot += a * r; na += a * a; nb += r * r;
    }
  });
  if (k !== ref.length) throw new Error(`compared ${k} values, dump has ${ref.length}`);
  return {max_abs_hidden: maxd, cosine: dot / Math.sqrt(na * nb)};
}

async function main() {
  const args = process.argv.slice(2);
  const model = args[args.indexOf('--model') + 1];
  const threads = args.includes('--threads') ? +args[args.indexOf('--threads') + 1] : 2;
  let session;
  const t0 = process.hrtime.bigint();
  try {
    session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    });
  } catch (e) {
    reply({ok: false, error: String(e)});
    return;
  }
  inputNames = session.inputNames;
  const pkg = require('onnxruntime-node/package.json');
  reply({ok: true, load_s: Number(process.hrtime.bigint() - t0) / 1e9,
         onnxruntime_node: pkg.version, threads});

  const rl = readline.createInterface({input: process.stdin, terminal: false});
  for await (const line of rl) {
    const parts = line.trim().split(/\s+/);
    if (!parts[0]) continue;
    try {
      if (parts[0] === 'quit') break;
      if (parts[0] === 'run') {
        const [name, iters, attn] = [parts[1], +parts[2], +parts[3]];
        if (attn >= 0) { reply({ok: false, error: 'attention output not measured for ORT'}); continue; }
        if (!SHAPES[name]) { reply({ok: false, error: 'unknown shape ' + name}); continue; }
        const f = shapeFeeds(SHAPES[name]);
        const ms = [];
        for (let i = 0; i < iters; ++i) {
          const s = process.hrtime.bigint();
          await session.run(f);
          ms.push(Number(process.hrtime.bigint() - s) / 1e6);
        }
        reply({ok: true, ms});
      } else if (parts[0] === 'check') {
        reply({ok: true, ...(await check(session, parts[1]))});
      } else {
        reply({ok: false, error: 'unknown command: ' + line});
      }
    } catch (e) {
      reply({ok: false, error: String(e)});
    }
  }
  process.exit(0);
}

main();
