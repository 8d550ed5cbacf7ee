// Starts the vendored Swagger UI on this server's OpenAPI document (a classic script: /docs).
(function () {
  var element = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: element.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
  });
})();
