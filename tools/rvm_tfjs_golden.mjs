// Golden outputs of the RobustVideoMatting MobileNetV3 TF.js graph model, for
// tests/unit/test_rvm.c: the original graph run unchanged by TensorFlow.js (pure-JS CPU
// backend) on small crops of vtest.avi, frame by frame with the recurrent states carried over.
//
// Setup, into a directory DIR outside the repository (tfjs is not a longrange dependency):
//     mkdir -p DIR && npm install --prefix DIR @tensorflow/tfjs@3.21.0
// Run from the repository root (ffmpeg CLI on PATH):
//     NODE_PATH=DIR/node_modules node tools/rvm_tfjs_golden.mjs \
//         ../shared/data/video/rvm-mobilenetv3-tfjs ../shared/data/video/vtest.avi \
//         tests/fixtures/rvm
//
// Writes, per case, <name>.safetensors (float32, CHW, batch dropped):
//     src [T][3][H][W] (RGB 0..1, exactly k/255), fgr [T][3][H][W], pha [T][H][W],
//     r1o..r4o [C][h][w] after the last frame; metadata ratio, frames, crop.
// The first frame gets scalar 0 tensors as r1i..r4i (what RVM's own inference does); frame t
// gets frame t-1's r*o. Cases: "ratio1" (44x30, downsample_ratio 1: no resize, no refiner)
// and "ratio05" (60x44, ratio 0.5: src resized to 30x22 and the fast guided filter refiner).
// The model itself (GPL-3.0) is only read, never copied.

import { createRequire } from 'module';
import { execFileSync } from 'child_process';
import fs from 'fs';
import path from 'path';

const require = createRequire(path.join(process.cwd(), 'x.js'));
const tf = require('@tensorflow/tfjs');

const CASES = [
  // name, ratio, crop (w:h:x:y of the 768x576 video), output size, frame numbers
  { name: 'ratio1', ratio: 1.0, crop: '176:120:180:200', w: 44, h: 30, frames: [0, 6, 12] },
  { name: 'ratio05', ratio: 0.5, crop: '240:176:560:170', w: 60, h: 44, frames: [0, 6] },
];

function decodeFrames(video, c) {
  const sel = c.frames.map((n) => `eq(n\\,${n})`).join('+');
  const raw = execFileSync('ffmpeg', ['-loglevel', 'error', '-i', video, '-vf',
    `select='${sel}',crop=${c.crop},scale=${c.w}:${c.h}:flags=area`, '-vsync', '0',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 28 });
  const n = c.w * c.h * 3;
  if (raw.length !== n * c.frames.length) throw new Error(`ffmpeg gave ${raw.length} bytes`);
  return c.frames.map((_, t) =>
    Float32Array.from(raw.subarray(t * n, (t + 1) * n), (v) => v / 255));
}

function loadModel(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const specs = [];
  const bufs = [];
  for (const g of json.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.length);
  return tf.loadGraphModel({
    load: async () => ({
      modelTopology: json.modelTopology, weightSpecs: specs, weightData, format: json.format,
      generatedBy: json.generatedBy, convertedBy: json.convertedBy, signature: json.signature,
    }),
  });
}

// HWC (tfjs NHWC, batch 1) -> CHW
function toCHW(data, h, w, c) {
  const out = new Float32Array(c * h * w);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < c; k++) out[(k * h + y) * w + x] = data[(y * w + x) * c + k];
  return out;
}

function writeSafetensors(file, tensors, meta) {
  const header = { __metadata__: meta };
  let pos = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [pos, pos + t.data.length * 4] };
    pos += t.data.length * 4;
  }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  const parts = [len, Buffer.from(text)];
  for (const [, t] of tensors) {
    parts.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.length * 4));
  }
  fs.writeFileSync(file, Buffer.concat(parts));
}

async function main() {
  const [modelDir, video, outDir] = process.argv.slice(2);
  if (!outDir) throw new Error('usage: rvm_tfjs_golden.mjs MODEL_DIR VIDEO OUT_DIR');
  await tf.setBackend('cpu');
  const model = await loadModel(modelDir);
  fs.mkdirSync(outDir, { recursive: true });
  // fgr, pha, r1o..r4o (the signature's output nodes)
  const outs = ['Identity:0', 'Identity_1:0', 'Identity_2:0', 'Identity_3:0', 'Identity_4:0',
    'Identity_5:0'];
  for (const c of CASES) {
    const frames = decodeFrames(video, c);
    const T = frames.length;
    const plane = c.h * c.w;
    const src = new Float32Array(T * 3 * plane);
    const fgr = new Float32Array(T * 3 * plane);
    const pha = new Float32Array(T * plane);
    let rec = [0, 1, 2, 3].map(() => tf.scalar(0));
    const ratio = tf.scalar(c.ratio);
    for (let t = 0; t < T; t++) {
      const x = tf.tensor4d(frames[t], [1, c.h, c.w, 3]);
      const t0 = Date.now();
      const r = await model.executeAsync({
        src: x, r1i: rec[0], r2i: rec[1], r3i: rec[2], r4i: rec[3], downsample_ratio: ratio,
      }, outs);
      const shapes = r.slice(2).map((s) => s.shape.join('x')).join(' ');
      console.error(`${c.name} frame ${t}: ${Date.now() - t0} ms; states ${shapes}`);
      src.set(toCHW(frames[t], c.h, c.w, 3), t * 3 * plane);
      fgr.set(toCHW(r[0].dataSync(), c.h, c.w, 3), t * 3 * plane);
      pha.set(r[1].dataSync(), t * plane);
      rec.forEach((s) => s.dispose());
      x.dispose();
      r[0].dispose();
      r[1].dispose();
      rec = r.slice(2);
    }
    const states = rec.map((s) => {
      const [, h, w, ch] = s.shape;
      return { shape: [ch, h, w], data: toCHW(s.dataSync(), h, w, ch) };
    });
    const tensors = [
      ['src', { shape: [T, 3, c.h, c.w], data: src }],
      ['fgr', { shape: [T, 3, c.h, c.w], data: fgr }],
      ['pha', { shape: [T, c.h, c.w], data: pha }],
      ...states.map((s, i) => [`r${i + 1}o`, s]),
    ];
    writeSafetensors(path.join(outDir, `${c.name}.safetensors`), tensors, {
      ratio: String(c.ratio), frames: c.frames.join(','),
      crop: `vtest.avi crop ${c.crop} scaled to ${c.w}x${c.h} (ffmpeg area)`,
      generator: 'tools/rvm_tfjs_golden.mjs, @tensorflow/tfjs 3.21.0 cpu backend',
    });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
