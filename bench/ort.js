// onnxruntime-node from bench/node_modules, installed there (version pinned in package.json)
// on first use. The CPU library ships in the npm package; the CUDA download is skipped.
// Shared by compare.js and ort_profile.js.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

function loadOrt() {
  const dir = path.join(__dirname, 'node_modules', 'onnxruntime-node');
  if (!fs.existsSync(dir)) {
    console.error('installing onnxruntime-node into bench/node_modules ...');
    execFileSync('npm', ['install', '--no-audit', '--no-fund'], {
      cwd: __dirname, stdio: 'inherit', env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
  }
  return require(dir);
}

module.exports = { loadOrt };
