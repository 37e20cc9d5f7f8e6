// Storage upload: hash the file (SHA-256, in slices), ask the console for a one-use
// upload ticket, then PUT the file's bytes to the streaming endpoint and show progress.
(function () {
  "use strict";
  var K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);

  // Incremental SHA-256 (WebCrypto only digests a whole buffer: a big file would not fit in memory).
  function Sha256() {
    this.h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.w = new Uint32Array(64);
    this.buf = new Uint8Array(64);
    this.bufLen = 0;
    this.total = 0;
  }
  Sha256.prototype.block = function (d, o) {
    var w = this.w, h = this.h, i;
    for (i = 0; i < 16; i++) { w[i] = (d[o + 4 * i] << 24) | (d[o + 4 * i + 1] << 16) | (d[o + 4 * i + 2] << 8) | d[o + 4 * i + 3]; }
    for (i = 16; i < 64; i++) {
      var x = w[i - 15], y = w[i - 2];
      var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    var a = h[0], b = h[1], c = h[2], e = h[4], f = h[5], g = h[6], dd = h[3], hh = h[7];
    for (i = 0; i < 64; i++) {
      var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      var t1 = (hh + S1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      var t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g; g = f; f = e; e = (dd + t1) | 0; dd = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += dd; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  };
  Sha256.prototype.update = function (data) {
    var i = 0, n = data.length;
    this.total += n;
    if (this.bufLen) {
      while (this.bufLen < 64 && i < n) { this.buf[this.bufLen++] = data[i++]; }
      if (this.bufLen === 64) { this.block(this.buf, 0); this.bufLen = 0; }
    }
    for (; i + 64 <= n; i += 64) { this.block(data, i); }
    while (i < n) { this.buf[this.bufLen++] = data[i++]; }
  };
  Sha256.prototype.hex = function () {
    var bits = this.total * 8;
    var pad = new Uint8Array((this.bufLen < 56 ? 56 : 120) - this.bufLen + 8);
    var hi = Math.floor(bits / 0x100000000), lo = bits >>> 0, n = pad.length;
    pad[0] = 0x80;
    pad[n - 8] = hi >>> 24; pad[n - 7] = (hi >>> 16) & 255; pad[n - 6] = (hi >>> 8) & 255; pad[n - 5] = hi & 255;
    pad[n - 4] = lo >>> 24; pad[n - 3] = (lo >>> 16) & 255; pad[n - 2] = (lo >>> 8) & 255; pad[n - 1] = lo & 255;
    this.update(pad);
    return Array.prototype.map.call(this.h, function (v) { return ("0000000" + v.toString(16)).slice(-8); }).join("");
  };

  var form = document.getElementById("upload-form");
  if (!form) { return; }
  var fileInput = form.elements.file, keyInput = form.elements.key;
  var status = document.getElementById("upload-status");
  var bar = document.getElementById("upload-progress");
  var result = document.getElementById("upload-result");
  var button = document.getElementById("upload-button");

  function say(text, cls) { status.textContent = text; status.className = cls || ""; }
  function mib(n) { return (n / 1048576).toFixed(1) + " MiB"; }
  function fact(name, value) {
    var dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = name; dd.textContent = value;
    result.appendChild(dt); result.appendChild(dd);
  }
  function showErrors(errors) {
    form.querySelectorAll("[data-errors-for]").forEach(function (ul) {
      ul.textContent = "";
      var message = errors && errors[ul.getAttribute("data-errors-for")];
      if (message) { var li = document.createElement("li"); li.textContent = message; ul.appendChild(li); }
    });
  }

  fileInput.addEventListener("change", function () {
    var file = fileInput.files[0];
    if (file && (keyInput.value === keyInput.dataset.prefix || keyInput.dataset.auto === "1")) {
      keyInput.value = keyInput.dataset.prefix + file.name;
      keyInput.dataset.auto = "1";
    }
  });
  keyInput.addEventListener("input", function () { keyInput.dataset.auto = "0"; });

  async function hash(file) {
    var sha = new Sha256(), slice = 4 * 1048576;
    for (var at = 0; at < file.size; at += slice) {
      sha.update(new Uint8Array(await file.slice(at, at + slice).arrayBuffer()));
      bar.value = 100 * Math.min(at + slice, file.size) / file.size;
      say("Computing the SHA-256: " + mib(Math.min(at + slice, file.size)) + " of " + mib(file.size));
    }
    return sha.hex();
  }

  function send(url, file) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable) { return; }
        bar.value = 100 * event.loaded / event.total;
        say(event.loaded < event.total ? "Uploading: " + mib(event.loaded) + " of " + mib(event.total)
                                        : "All bytes sent; the bucket is assembling and verifying them…");
      });
      xhr.addEventListener("load", function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = {error: "Unexpected answer (" + xhr.status + ")."}; }
        resolve({ok: xhr.status === 200, body: body});
      });
      xhr.addEventListener("error", function () { resolve({ok: false, body: {error: "The connection to the console was lost; the upload was aborted."}}); });
      xhr.send(file);
    });
  }

  function fields() {
    var data = new FormData(form), picked = {};
    data.forEach(function (value, name) { if (name !== "file" && name !== "csrfmiddlewaretoken" && value) { picked[name] = value; } });
    return picked;
  }

  // Through the console: hash the whole file, get a ticket, PUT the bytes to the streaming endpoint.
  async function streamed(file) {
    var data = new FormData(form);
    data.delete("file");
    data.set("sha256", await hash(file));
    data.set("size", String(file.size));
    var answer = await fetch(form.dataset.ticketUrl, {method: "POST", body: data, credentials: "same-origin"});
    var ticket = await answer.json();
    if (!answer.ok) { return {ok: false, body: ticket}; }
    bar.value = 0;
    return send(ticket.url, file);
  }

  // Straight to the bucket (connections with direct uploads): see direct_upload.js.
  async function direct(file) {
    say("Starting the upload…");
    bar.value = 0;
    try {
      var body = await window.opsDirectUpload(file, fields(), {
        url: form.dataset.directUrl, csrf: form.elements.csrfmiddlewaretoken.value,
        progress: function (sent) {
          bar.value = file.size ? 100 * sent / file.size : 100;
          say(sent < file.size ? "Uploading to the bucket: " + mib(sent) + " of " + mib(file.size)
                               : "All parts sent; the console is verifying their checksums…");
        }
      });
      return {ok: true, body: body};
    } catch (error) {
      return {ok: false, body: {error: error.message, errors: error.errors}};
    }
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    var file = fileInput.files[0];
    if (!file) { say("Choose a file first.", "errorlist"); return; }
    button.disabled = true;
    result.textContent = "";
    showErrors(null);
    try {
      var outcome = form.dataset.directUrl ? await direct(file) : await streamed(file);
      if (!outcome.ok) { showErrors(outcome.body.errors); say(outcome.body.error || "The upload failed.", "errorlist"); return; }
      bar.value = 100;
      say("Uploaded and verified.", "ok");
      var r = outcome.body;
      fact("Key", r.key); fact("Size", r.size + " bytes"); fact("SHA-256", r.sha256 || r.checksum_sha256 + " (of the parts)");
      fact("Parts", String(r.parts));
      if (r.classification) { fact("Classification", r.classification); fact("Encryption", r.encryption || "none"); }
      var link = document.createElement("a");
      link.href = form.dataset.objectUrl + encodeURIComponent(r.key); link.textContent = "Open the object"; link.id = "uploaded-object";
      var dd = document.createElement("dd"); dd.appendChild(link); result.appendChild(document.createElement("dt")); result.appendChild(dd);
    } finally {
      button.disabled = false;
    }
  });
})();
