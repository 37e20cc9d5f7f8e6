// Storage upload straight to the bucket: the console starts a multipart upload and presigns each part
// bound to the SHA-256 this browser computed (WebCrypto); the browser PUTs the parts to the endpoint,
// then the console verifies them (count, sizes, checksums) and completes. No byte passes through the console.
(function () {
  "use strict";

  function b64(buffer) { return btoa(String.fromCharCode.apply(null, new Uint8Array(buffer))); }

  function stepper(url, csrf) {
    return async function (step, body) {
      var answer = await fetch(url.replace("STEP", step), {
        method: "POST", credentials: "same-origin", body: JSON.stringify(body),
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf}
      });
      var data = {};
      try { data = await answer.json(); } catch (e) { data = {error: "Unexpected answer (" + answer.status + ")."}; }
      if (!answer.ok) { var error = new Error(data.error || "The upload was refused."); error.errors = data.errors; throw error; }
      return data;
    };
  }

  // upload(file, fields, {url, csrf, progress(sentBytes)}) -> the console's storage.complete_upload result.
  window.opsDirectUpload = async function (file, fields, options) {
    var post = stepper(options.url, options.csrf);
    var begun = await post("begin", Object.assign({}, fields, {size: file.size}));
    var ref = {key: begun.key, upload_id: begun.upload_id};
    // Parts hashed and presigned per request to the console, in batches of begun.sign_batch (at least as
    // many as go at once; at most ~50 requests per upload, each a rate-limited write operation). While the
    // parts of one batch upload, the next is hashed and signed, so the PUTs seldom wait for their URLs.
    var BATCH = begun.sign_batch, declared = [], batches = {}, next = 1, sent = 0;
    function slice(n) { return file.slice((n - 1) * begun.part_size, Math.min(n * begun.part_size, file.size)); }

    // Hash a batch of parts (read, digest, drop: the PUT reads the file again) and have them presigned.
    function batch(index) {
      if (!batches[index]) {
        batches[index] = (async function () {
          var parts = [];
          for (var n = index * BATCH + 1; n <= Math.min((index + 1) * BATCH, begun.parts); n++) {
            var sha = b64(await crypto.subtle.digest("SHA-256", await slice(n).arrayBuffer()));
            declared[n - 1] = {number: n, sha256: sha};
            parts.push({number: n, sha256: sha});
          }
          var answer = await post("sign", Object.assign({parts: parts}, ref));
          var byNumber = {};
          answer.parts.forEach(function (p) { byNumber[p.number] = p; });
          return byNumber;
        })();
      }
      return batches[index];
    }

    // The batch holding part n; once it is signed, the next one is hashed and signed (one at a time).
    function signed(n) {
      var index = Math.floor((n - 1) / BATCH), current = batch(index);
      if ((index + 1) * BATCH < begun.parts && !batches[index + 1]) {
        current.then(function () { batch(index + 1).catch(function () { /* its own worker reports it */ }); }, function () {});
      }
      return current;
    }

    async function worker() {
      while (next <= begun.parts) {
        var n = next++;
        var part = (await signed(n))[n];
        var answer = await fetch(part.url, {method: "PUT", headers: part.headers, body: slice(n)});
        if (!answer.ok) { throw new Error("The bucket refused part " + n + " (" + answer.status + ")."); }
        sent += slice(n).size;
        options.progress(sent);
      }
    }

    try {
      var workers = [];
      for (var i = 0; i < Math.max(1, begun.concurrency); i++) { workers.push(worker()); }
      await Promise.all(workers);
    } catch (error) {
      next = begun.parts + 1;  // the other workers stop after their part
      await post("abort", ref).catch(function () { /* the console's cleanup aborts it later */ });
      if (error instanceof TypeError) { error = new Error("The bucket could not be reached from this browser (network or CORS): the upload was aborted."); }
      throw error;
    }
    return post("complete", Object.assign({parts: declared}, ref));
  };
})();
