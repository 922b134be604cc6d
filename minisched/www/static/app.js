// minisched UI: reload pages that show running work, and follow a running try's log. No dependencies.
(function () {
  "use strict";
  var body = document.body;
  var refresh = parseInt(body.getAttribute("data-refresh") || "0", 10);
  if (refresh > 0) {
    setInterval(function () {
      var typing = document.activeElement && /INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName);
      if (!document.hidden && !typing) { window.location.reload(); }
    }, refresh * 1000);
  }
  var log = document.getElementById("log");
  if (log && log.getAttribute("data-chunk-url")) {
    var url = log.getAttribute("data-chunk-url");
    var token = log.getAttribute("data-token") || "";
    var status = document.getElementById("log-status");
    var poll = function () {
      var joiner = url.indexOf("?") >= 0 ? "&" : "?";
      fetch(url + joiner + "token=" + encodeURIComponent(token), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (page) {
          var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 20;
          if (page.skipped > 0) {
            var note = document.createElement("span");
            note.className = "log-skipped";
            note.textContent = "[the first " + Math.ceil(page.skipped / 1024) + " KiB are not shown: Download has the whole log]\n";
            log.appendChild(note);
          }
          if (page.content) { log.appendChild(document.createTextNode(page.content)); }
          token = page.continuation_token;
          if (atBottom) { log.scrollTop = log.scrollHeight; }
          if (page.more || page.running) { setTimeout(poll, page.more ? 50 : 1500); }
          else if (log.getAttribute("data-following")) { window.location.reload(); }
          else if (status) { status.textContent = ""; }
        })
        .catch(function () { setTimeout(poll, 3000); });
    };
    poll();
  }
})();
