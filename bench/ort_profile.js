#!/usr/bin/env node
// ONNX Runtime's per-node time on a model, the counterpart of `engine bench --profile`, to find
// which layers make the difference between the two (bench/RESULTS.md uses it).
//
// Usage: node bench/ort_profile.js MODEL.onnx [--batch 4] [--threads 1] [--iters 12] [--sort]
// Runs ORT (CPU EP, graph optimization 'all', intra-op threads as given, inter-op 1) with its
// profiler on; prints, per executed node in run order (or slowest first with --sort), its op and
// the median kernel time over the runs after the first two, then the sum. ORT names nodes after
// their outputs once its optimizer has fused them (a fused Conv + Add + Relu keeps one name).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { loadOrt } = require('./ort');

function parseArgs(argv) {
  const o = { batch: 4, threads: 1, iters: 12, sort: false, model: null };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    if (a === '--batch') o.batch = num();
    else if (a === '--threads') o.threads = num();
    else if (a === '--iters') o.iters = num();
    else if (a === '--sort') o.sort = true;
    else if (!a.startsWith('--') && !o.model) o.model = a;
    else throw new Error(`unknown argument '${a}'`);
  }
  if (!o.model) throw new Error('usage: node bench/ort_profile.js MODEL.onnx [--batch N] [--threads N] [--iters N] [--sort]');
  if (!fs.existsSync(o.model)) throw new Error(`${o.model}: no such file`);
  if (o.iters < 3) throw new Error('--iters must be at least 3 (the first two runs are warm-up)');
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort-profile-'));
  try {
    const sess = await ort.InferenceSession.create(o.model, {
      intraOpNumThreads: o.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
      executionMode: 'sequential', enableProfiling: true, profileFilePrefix: path.join(dir, 'p'),
    });
    const feeds = {};
    for (const name of sess.inputNames) {
      const meta = sess.inputMetadata ? sess.inputMetadata.find((m) => m.name === name) : null;
      const dims = meta && meta.shape ? meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : o.batch))
                                      : [o.batch, 3, 224, 224];
      dims[0] = o.batch;
      const n = dims.reduce((a, b) => a * b, 1);
      feeds[name] = new ort.Tensor('float32', new Float32Array(n).fill(0.5), dims);
    }
    for (let i = 0; i < o.iters; ++i) await sess.run(feeds);
    sess.endProfiling();
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('ORT wrote no profile');
    const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    const nodes = new Map();  // name -> { op, durs }
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const name = e.name.slice(0, -'_kernel_time'.length);
      if (!nodes.has(name)) nodes.set(name, { op: (e.args && e.args.op_name) || '?', durs: [] });
      nodes.get(name).durs.push(e.dur);
    }
    let rows = [];
    for (const [name, v] of nodes) {
      const d = v.durs.slice(2).sort((a, b) => a - b);
      if (d.length) rows.push({ name, op: v.op, us: d[Math.floor(d.length / 2)] });
    }
    if (o.sort) rows = rows.sort((a, b) => b.us - a.us);
    const total = rows.reduce((a, r) => a + r.us, 0);
    console.log(`ORT ${ort.env && ort.env.versions ? ort.env.versions.common : ''} ${o.model}, batch ${o.batch}, ${o.threads} thread(s), median of ${o.iters - 2} runs`);
    console.log(`${'node'.padEnd(44)} ${'op'.padEnd(20)} ${'us'.padStart(9)} ${'%'.padStart(6)}`);
    for (const r of rows)
      console.log(`${r.name.padEnd(44)} ${r.op.padEnd(20)} ${r.us.toFixed(0).padStart(9)} ${(100 * r.us / total).toFixed(1).padStart(6)}`);
    console.log(`${'sum of node medians'.padEnd(65)} ${total.toFixed(0).padStart(9)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`ort_profile.js: ${e.message}`);
  process.exit(1);
});
