// Switchyard console: starts the vendored Swagger UI on the API reference
// page (/ui/api) with the OpenAPI document named by #swagger-ui's
// data-url. The validator badge is off (it would ask validator.swagger.io),
// so the page makes no request to another host.
(function () {
  "use strict";

  function start() {
    var el = document.getElementById("swagger-ui");
    if (!el || typeof window.SwaggerUIBundle !== "function") return;
    window.SwaggerUIBundle({
      url: el.dataset.url,
      domNode: el,
      validatorUrl: null,
      deepLinking: true,
      docExpansion: "list",
      defaultModelsExpandDepth: 0,
      displayRequestDuration: true,
      filter: true,
      tryItOutEnabled: false,
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
