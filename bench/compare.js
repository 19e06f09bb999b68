#!/usr/bin/env node
// Side-by-side latency of the engine and ONNX Runtime (onnxruntime-node, CPU EP) on the same
// model, the same input tensor and the same thread count, interleaved over several rounds.
//
// Usage: node bench/compare.js [--models a,b,...] [--batch 1,32] [--threads 2] [--rounds 5]
//          [--seconds 1] [--warmup 2] [--engine build/engine] [--engine-args "--fuse all"]
//          [--data ../shared] [--json FILE] [--precision fp32|int8|qdq]
// Models: names from MODELS below or paths to .onnx files. See bench/README.md.
// --precision int8: the engine quantizes the FP32 model itself (`engine bench --precision int8`:
// W8A8, per-channel int8 weights, uint8 activations, min/max on 8 noise inputs) and ORT runs the
// same network as an ORT-style QDQ model with the same scheme (bench/models/NAME_qdq.onnx, made by
// bench/make_qdq.sh on first use; the ../shared QDQ files for fashion_resnet18 / _mobilenet_v2).
// --precision qdq: both run that same QDQ file (the engine imports it into integer ops: the
// import-qdq pass); a model given as a .onnx path is taken to be a QDQ file already.
//
// Every round, for each batch size: the engine (`engine bench MODEL -i INPUT.npy --seconds S
// --json`, a fresh process) and ORT (one session per model, kept across rounds) each run a timed
// loop of S seconds after W warm-up runs; the order of the two alternates between rounds. The
// table shows the median over rounds of each round's median latency, and engine / ORT.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { loadOrt } = require('./ort');

const BENCH = __dirname;
const ROOT = path.resolve(BENCH, '..');

function parseArgs(argv) {
  const o = {
    models: 'resnet18,resnet50,mobilenet_v2,vgg16_bn,fashion_resnet18,fashion_mobilenet_v2,' +
        'fashion_vgg16_bn,demo',
    batch: '1', threads: '2', rounds: '5', seconds: '1', warmup: '2',
    engine: path.join(ROOT, 'build', 'engine'), 'engine-args': '',
    data: process.env.ENGINE_DATA || path.resolve(ROOT, '..', 'shared'), json: '',
    precision: 'fp32',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 17).join('\n'));
      process.exit(0);
    }
    const key = a.replace(/^--/, '');
    if (!a.startsWith('--') || !(key in o) || i + 1 >= argv.length) {
      console.error(`compare.js: unknown or incomplete option '${a}' (see --help)`);
      process.exit(2);
    }
    o[key] = argv[++i];
  }
  const ints = (s, what) => s.split(',').map(x => {
    if (!/^[1-9][0-9]*$/.test(x)) {
      console.error(`compare.js: --${what}: '${x}' is not a positive integer`);
      process.exit(2);
    }
    return parseInt(x, 10);
  });
  if (!['fp32', 'int8', 'qdq'].includes(o.precision)) {
    console.error(`compare.js: --precision must be fp32, int8 or qdq, got '${o.precision}'`);
    process.exit(2);
  }
  o.batches = ints(o.batch, 'batch');
  [o.threads] = ints(o.threads, 'threads');
  [o.rounds] = ints(o.rounds, 'rounds');
  o.warmup = parseInt(o.warmup, 10);
  o.seconds = parseFloat(o.seconds);
  return o;
}

// Model names -> files. Torchvision models at 224x224 are exported on first use.
const TORCHVISION = ['resnet18', 'resnet50', 'mobilenet_v2', 'vgg16_bn'];
function modelPath(name, o) {
  if (name.endsWith('.onnx')) return path.resolve(name);
  if (name === 'demo') return path.join(ROOT, 'demo', 'fashion_resnet8.onnx');
  const fashion = {
    fashion_resnet18: 'resnet18_fp32.onnx', fashion_mobilenet_v2: 'mobilenet_v2_fp32.onnx',
    fashion_mobilenet_v2_bn: 'mobilenet_v2_bn_fp32.onnx', fashion_vgg16_bn: 'vgg16_bn_fp16w.onnx',
  };
  if (fashion[name]) return path.join(o.data, 'models', 'fashion', fashion[name]);
  if (TORCHVISION.includes(name)) {
    const dir = path.join(BENCH, 'models');
    const file = path.join(dir, name + '.onnx');
    if (!fs.existsSync(file)) {
      // With PyTorch: torch.onnx.export ($ENGINE_DATA/tools). Without: the same architectures
      // written directly with python3-onnx (bench/make_torchvision.py; BN already folded, as
      // torch's export gives it).
      const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision']).status === 0;
      const tool = torch ? path.join(o.data, 'tools', 'export_torchvision.py')
                         : path.join(BENCH, 'make_torchvision.py');
      console.error(`writing ${name} (torchvision architecture, seeded random weights) to ${file}` +
                    ` with ${path.basename(tool)}`);
      const r = spawnSync('/usr/bin/python3', [tool, dir, name], { stdio: 'inherit' });
      if (r.status !== 0)
        throw new Error(`${tool} failed; it needs Debian's ` +
                        (torch ? 'python3-torch and python3-torchvision' : 'python3-onnx and python3-numpy'));
    }
    return file;
  }
  throw new Error(`unknown model '${name}' (a .onnx path, demo, fashion_*, or ${TORCHVISION})`);
}

// The INT8 QDQ model ORT runs for --precision int8.
function qdqPath(name, o) {
  if (name.endsWith('.onnx')) return modelPath(name, o);
  const fashion = {
    fashion_resnet18: 'resnet18_qdq_minmax_pc_ort.onnx',
    fashion_mobilenet_v2: 'mobilenet_v2_qdq_minmax_pc_ort.onnx',
  };
  if (fashion[name]) return path.join(o.data, 'models', 'fashion', fashion[name]);
  if (!TORCHVISION.includes(name))
    throw new Error(`--precision int8: no QDQ model for '${name}' (${TORCHVISION}, ${Object.keys(fashion)})`);
  modelPath(name, o);  // the FP32 export first
  const file = path.join(BENCH, 'models', name + '_qdq.onnx');
  if (!fs.existsSync(file)) {
    const r = spawnSync('bash', [path.join(BENCH, 'make_qdq.sh'), name],
                        { stdio: 'inherit', env: { ...process.env, ENGINE_DATA: o.data } });
    if (r.status !== 0) throw new Error('bench/make_qdq.sh failed (needs python3-onnx, python3-numpy)');
  }
  return file;
}

// Standard-normal float32 values (xorshift32 + Box-Muller, seeded).
function randn(n, seed) {
  let s = seed >>> 0 || 1;
  const u = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return (s + 1) / 4294967297; };
  const a = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())), t = 2 * Math.PI * u();
    a[i] = r * Math.cos(t);
    if (i + 1 < n) a[i + 1] = r * Math.sin(t);
  }
  return a;
}

// A float32 .npy file (format 1.0), the engine's input.
function writeNpy(file, data, shape) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')},), }`;
  while ((10 + header.length + 1) % 64) header += ' ';
  header += '\n';
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer)]));
}

const median = xs => {
  const s = [...xs].sort((a, b) => a - b), m = s.length;
  return m % 2 ? s[(m - 1) / 2] : (s[m / 2 - 1] + s[m / 2]) / 2;
};

function engineRound(o, model, npy) {
  const args = ['bench', model, '-i', npy, '--threads', String(o.threads), '--seconds',
    String(o.seconds), '--warmup', String(o.warmup), '--json',
    ...(o.precision === 'int8' ? ['--precision', 'int8'] : []),
    ...o['engine-args'].split(' ').filter(Boolean)];
  const r = spawnSync(o.engine, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0)
    throw new Error(`${o.engine} ${args.join(' ')}: ${r.error || (r.signal ? `killed by ${r.signal}` : `exit ${r.status}`)}\n${r.stderr}`);
  const res = JSON.parse(r.stdout).results[0];
  return { ms: res.median_ms, cpu: res.cpu_share };
}

async function ortRound(o, sess, feeds) {
  for (let i = 0; i < o.warmup; i++) await sess.run(feeds);
  const times = [];
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (;;) {
    const t = process.hrtime.bigint();
    await sess.run(feeds);
    const end = process.hrtime.bigint();
    times.push(Number(end - t) / 1e6);
    if (Number(end - start) / 1e9 >= o.seconds) break;
  }
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6, cpu = process.cpuUsage(cpu0);
  return { ms: median(times), cpu: (cpu.user + cpu.system) / 1e3 / (wallMs * o.threads) };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(o.engine)) throw new Error(`${o.engine} not found: build engine_cli first`);
  const ort = loadOrt();
  const ortVersion = require(path.join(BENCH, 'node_modules', 'onnxruntime-node', 'package.json')).version;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-compare-'));
  const rows = [];
  const load0 = os.loadavg()[0];
  console.error(`engine ${o.engine}, onnxruntime-node ${ortVersion}, ${os.cpus().length} CPUs, ` +
                `load average ${load0.toFixed(2)}`);
  try {
    for (const name of o.models.split(',').filter(Boolean)) {
      const file = modelPath(name, o);
      const ortFile = o.precision === 'fp32' ? file : qdqPath(name, o);
      const engineFile = o.precision === 'qdq' ? ortFile : file;
      const sess = await ort.InferenceSession.create(ortFile, {
        executionProviders: ['cpu'], intraOpNumThreads: o.threads, interOpNumThreads: 1,
        graphOptimizationLevel: 'all', executionMode: 'sequential',
      });
      const meta = sess.inputMetadata;
      if (meta.length !== 1) throw new Error(`${name}: only single-input models are compared`);
      const feedsByBatch = new Map();
      for (const b of o.batches) {
        const shape = meta[0].shape.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? b : NaN));
        if (shape.some(Number.isNaN)) throw new Error(`${name}: input shape ${meta[0].shape} has dynamic dims besides the batch`);
        if (shape[0] !== b) { console.error(`${name}: fixed batch ${shape[0]}, skipping batch ${b}`); continue; }
        const data = randn(shape.reduce((a, c) => a * c, 1), 12345 + b);
        const npy = path.join(tmp, `${name.replace(/[^\w.-]/g, '_')}_b${b}.npy`);
        writeNpy(npy, data, shape);
        feedsByBatch.set(b, { npy, feeds: { [sess.inputNames[0]]: new ort.Tensor('float32', data, shape) } });
      }
      const eng = new Map(), rt = new Map();
      for (let r = 0; r < o.rounds; r++) {
        for (const [b, f] of feedsByBatch) {
          const runEngine = () => { (eng.get(b) || eng.set(b, []).get(b)).push(engineRound(o, engineFile, f.npy)); };
          const runOrt = async () => { (rt.get(b) || rt.set(b, []).get(b)).push(await ortRound(o, sess, f.feeds)); };
          if (r % 2 === 0) { runEngine(); await runOrt(); } else { await runOrt(); runEngine(); }
          const e = eng.get(b).at(-1), t = rt.get(b).at(-1);
          console.error(`${name} batch ${b} round ${r + 1}/${o.rounds}: engine ${e.ms.toFixed(3)} ms ` +
                        `(CPU ${(100 * e.cpu).toFixed(0)}%), ORT ${t.ms.toFixed(3)} ms (CPU ${(100 * t.cpu).toFixed(0)}%)`);
        }
      }
      for (const b of feedsByBatch.keys())
        rows.push({ model: name, batch: b, threads: o.threads, engine_ms: median(eng.get(b).map(x => x.ms)),
                    ort_ms: median(rt.get(b).map(x => x.ms)), engine_rounds: eng.get(b), ort_rounds: rt.get(b) });
      await sess.release();
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const load1 = os.loadavg()[0];
  const f = (x, d) => x.toFixed(d);
  // A round whose process got less than 90% of its threads' CPU time shared the cores.
  const busy = xs => xs.filter(x => x.cpu < 0.9).length;
  const what = { fp32: '', int8: ' (engine: its own PTQ of the FP32 model; ORT: the QDQ model)',
                 qdq: ' (engine and ORT: the same QDQ model file)' };
  console.log(`precision ${o.precision}${what[o.precision]}`);
  console.log(`| model | batch | threads | engine ms | ORT ms | engine / ORT | busy rounds (engine, ORT) |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|`);
  for (const r of rows)
    console.log(`| ${r.model} | ${r.batch} | ${r.threads} | ${f(r.engine_ms, 3)} | ${f(r.ort_ms, 3)} | ` +
                `${f(r.engine_ms / r.ort_ms, 2)} | ${busy(r.engine_rounds)}, ${busy(r.ort_rounds)} |`);
  console.log(`\nmedians of ${o.rounds} rounds of ${o.seconds} s each (after ${o.warmup} warm-up runs); ` +
              `onnxruntime-node ${ortVersion}; load average ${f(load0, 2)} before, ${f(load1, 2)} after ` +
              `(${os.cpus().length} CPUs); busy round: CPU time < 90% of wall time x threads`);
  if (o.json) fs.writeFileSync(o.json, JSON.stringify({ options: o, ort_version: ortVersion, load0, load1, rows }, null, 1));
}

main().catch(e => { console.error(`compare.js: ${e.message || e}`); process.exit(1); });
