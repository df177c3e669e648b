// Interop with the reference TUF implementation in JavaScript (tuf-js 5.0.1, @tufjs/models
// 4.1.1), driven by test-interop.sh. Two modes:
//
//   node interop.js client METADATA_URL TARGET_URL ROOT_FILE WORK_DIR TARGET EXPECT_FILE [CUSTOM]
//     tuf-js's Updater refreshes from a repository written by `ringfence repo`, downloads and
//     verifies TARGET and checks its bytes (and, if given, its custom metadata).
//   node interop.js write OUT_DIR KEYTYPE
//     @tufjs/models writes and signs a consistent-snapshot repository (root v1 -> v2 with a
//     rotated root key, targets with a delegation that itself delegates to succinct hash
//     bins, snapshot, timestamp) with KEYTYPE keys
//     (ed25519, ecdsa, rsa) made by node's crypto, for ringfence-tuf-client to verify.
//
//   node interop.js canon FILE
//     prints @tufjs/canonical-json's canonical form of FILE (compared with ours byte for byte).
//
// Module resolution: NODE_PATH points at the node_modules installed under the build dir.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

function die(msg) {
  console.error('interop.js: ' + msg);
  process.exit(1);
}

async function client(args) {
  const [murl, turl, rootFile, work, target, expectFile, custom] = args;
  const { Updater } = require('tuf-js');
  const mdir = path.join(work, 'md'), tdir = path.join(work, 't');
  fs.mkdirSync(mdir, { recursive: true });
  fs.mkdirSync(tdir, { recursive: true });
  // the trusted root is installed once; later runs start from what tuf-js trusts by then
  if (!fs.existsSync(path.join(mdir, 'root.json')))
    fs.copyFileSync(rootFile, path.join(mdir, 'root.json'));
  const u = new Updater({ metadataDir: mdir, metadataBaseUrl: murl, targetDir: tdir,
    targetBaseUrl: turl, config: { fetchRetries: 0 } });
  await u.refresh();
  const info = await u.getTargetInfo(target);
  if (!info) die('tuf-js: no target ' + target);
  const out = await u.downloadTarget(info, path.join(tdir, encodeURIComponent(target)));
  if (!fs.readFileSync(out).equals(fs.readFileSync(expectFile)))
    die('tuf-js downloaded bytes differ from ' + expectFile);
  if (custom !== undefined) {
    const want = JSON.parse(custom), got = info.custom;
    if (JSON.stringify(got) !== JSON.stringify(want))
      die('custom metadata differs: ' + JSON.stringify(got));
  }
  console.log('tuf-js verified ' + target + ' (' + info.length + ' bytes)');
}

function isoSeconds(days) {
  return new Date(Date.now() + days * 86400e3).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function makeKey(kind) {
  const { Key, Signature } = require('@tufjs/models');
  const { canonicalize } = require('@tufjs/canonical-json');
  let pair, keyType, scheme, pub, sign;
  if (kind === 'ed25519') {
    pair = crypto.generateKeyPairSync('ed25519');
    keyType = scheme = 'ed25519';
    pub = pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex');
    sign = (d) => crypto.sign(null, d, pair.privateKey);
  } else if (kind === 'ecdsa') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    keyType = 'ecdsa';
    scheme = 'ecdsa-sha2-nistp256';
    pub = pair.publicKey.export({ format: 'pem', type: 'spki' });
    sign = (d) => crypto.sign('sha256', d, pair.privateKey); // DER
  } else if (kind === 'rsa') {
    pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    keyType = 'rsa';
    scheme = 'rsassa-pss-sha256';
    pub = pair.publicKey.export({ format: 'pem', type: 'spki' });
    sign = (d) => crypto.sign('sha256', d, { key: pair.privateKey,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST });
  } else {
    die('unknown key type ' + kind);
  }
  const body = { keytype: keyType, scheme: scheme, keyval: { public: pub } };
  const keyID = crypto.createHash('sha256').update(canonicalize(body)).digest('hex');
  const key = new Key({ keyID, keyType, scheme, keyVal: { public: pub } });
  return { keyID, key, json: body,
    signer: (data) => new Signature({ keyID, sig: sign(data).toString('hex') }) };
}

function write(args) {
  const [out, kind] = args;
  const m = require('@tufjs/models');
  const meta = path.join(out, 'metadata'), tgt = path.join(out, 'targets');
  fs.mkdirSync(path.join(tgt, 'dl'), { recursive: true });
  fs.mkdirSync(meta, { recursive: true });
  const k = { root: makeKey(kind), root2: makeKey(kind), timestamp: makeKey(kind),
    snapshot: makeKey(kind), targets: makeKey(kind), targets2: makeKey(kind),
    del: makeKey(kind), bin: makeKey(kind) };
  const save = (name, md) => {
    const text = JSON.stringify(md.toJSON(), null, 2); // deliberately not canonical
    fs.writeFileSync(path.join(meta, name), text);
    return Buffer.from(text);
  };
  const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
  const addFile = (p, bytes) => {
    const dir = path.dirname(p), base = path.basename(p);
    fs.writeFileSync(path.join(tgt, dir === '.' ? '' : dir, sha(bytes) + '.' + base), bytes);
    return { length: bytes.length, hashes: { sha256: sha(bytes) } };
  };
  const common = (type, version, days) =>
    ({ _type: type, spec_version: '1.0.31', version, expires: isoSeconds(days) });
  const rootJson = (rootKey, version) => {
    const keys = {};
    for (const n of [rootKey, 'timestamp', 'snapshot', 'targets', 'targets2'])
      keys[k[n].keyID] = k[n].json;
    const roles = { root: { keyids: [k[rootKey].keyID], threshold: 1 } };
    for (const n of ['timestamp', 'snapshot'])
      roles[n] = { keyids: [k[n].keyID], threshold: 1 };
    // targets: 2 of 2 keys
    roles.targets = { keyids: [k.targets.keyID, k.targets2.keyID], threshold: 2 };
    return Object.assign(common('root', version, 365),
      { consistent_snapshot: true, keys, roles });
  };
  // root v1, then v2 with a rotated root key, signed by the old and the new key
  const r1 = new m.Metadata(m.Root.fromJSON(rootJson('root', 1)));
  r1.sign(k.root.signer);
  save('1.root.json', r1);
  const r2 = new m.Metadata(m.Root.fromJSON(rootJson('root2', 2)));
  r2.sign(k.root.signer);
  r2.sign(k.root2.signer);
  save('2.root.json', r2);
  save('root.json', r2);
  // delegated role 'del' (terminating, dl/*) and top-level targets
  const content = Buffer.from('signed by @tufjs/models (' + kind + ')\n');
  const dcontent = Buffer.from('delegated target\n');
  // 'del' hands dl/* targets it does not list to succinct hash bins (TAP 15, 4 bins)
  const scontent = Buffer.from('in a succinct hash bin\n');
  const del = new m.Metadata(m.Targets.fromJSON(Object.assign(common('targets', 1, 90), {
    targets: { 'dl/d.txt': addFile('dl/d.txt', dcontent) },
    delegations: { keys: { [k.bin.keyID]: k.bin.json },
      succinct_roles: { keyids: [k.bin.keyID], threshold: 1, bit_length: 2,
        name_prefix: 'bin' } },
  })));
  del.sign(k.del.signer);
  const delBytes = save('1.del.json', del);
  const binName = del.signed.delegations.succinctRoles.getRoleForTarget('dl/s.txt');
  const bin = new m.Metadata(m.Targets.fromJSON(Object.assign(common('targets', 1, 90),
    { targets: { 'dl/s.txt': addFile('dl/s.txt', scontent) } })));
  bin.sign(k.bin.signer);
  const binBytes = save('1.' + binName + '.json', bin);
  const top = new m.Metadata(m.Targets.fromJSON(Object.assign(common('targets', 1, 90), {
    targets: { 'file.txt': Object.assign(addFile('file.txt', content),
      { custom: { ramp: [{ ring: 0, pct: 5 }] } }) },
    delegations: { keys: { [k.del.keyID]: k.del.json },
      roles: [{ name: 'del', keyids: [k.del.keyID], threshold: 1, terminating: true,
        paths: ['dl/*'] }] },
  })));
  top.sign(k.targets.signer);
  top.sign(k.targets2.signer);
  const topBytes = save('1.targets.json', top);
  const snap = new m.Metadata(m.Snapshot.fromJSON(Object.assign(common('snapshot', 1, 7), {
    meta: { 'targets.json': { version: 1, length: topBytes.length,
      hashes: { sha256: sha(topBytes) } },
    'del.json': { version: 1, length: delBytes.length },
    [binName + '.json']: { version: 1, length: binBytes.length } },
  })));
  snap.sign(k.snapshot.signer);
  const snapBytes = save('1.snapshot.json', snap);
  const ts = new m.Metadata(m.Timestamp.fromJSON(Object.assign(common('timestamp', 1, 1), {
    meta: { 'snapshot.json': { version: 1, length: snapBytes.length,
      hashes: { sha256: sha(snapBytes) } } },
  })));
  ts.sign(k.timestamp.signer);
  save('timestamp.json', ts);
  fs.writeFileSync(path.join(out, 'file.txt'), content);
  fs.writeFileSync(path.join(out, 'd.txt'), dcontent);
  fs.writeFileSync(path.join(out, 's.txt'), scontent);
  fs.writeFileSync(path.join(out, 'bin-name'), binName);
  // tuf-js itself must accept what we wrote (guards the test against a writer mistake)
  r1.verifyDelegate('root', r1);
  r1.verifyDelegate('root', r2);
  r2.verifyDelegate('root', r2);
  r2.verifyDelegate('timestamp', ts);
  r2.verifyDelegate('snapshot', snap);
  r2.verifyDelegate('targets', top);
  top.verifyDelegate('del', del);
  del.verifyDelegate(binName, bin);
  console.log('@tufjs/models wrote a ' + kind + ' repository in ' + out);
}

// canon FILE: @tufjs/canonical-json's canonical form of the JSON in FILE, on stdout
function canon(args) {
  const { canonicalize } = require('@tufjs/canonical-json');
  process.stdout.write(Buffer.from(canonicalize(JSON.parse(fs.readFileSync(args[0], 'utf8')))));
}

const [mode, ...rest] = process.argv.slice(2);
const run = mode === 'client' ? client(rest) : mode === 'write' ? Promise.resolve(write(rest))
  : mode === 'canon' ? Promise.resolve(canon(rest))
  : Promise.reject(new Error('usage: interop.js client|write|canon ...'));
run.catch((e) => die(e && e.stack ? e.stack : String(e)));
