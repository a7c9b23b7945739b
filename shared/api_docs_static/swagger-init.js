// Starts Swagger UI on /docs (shared/api_docs.py). A file, not an inline script, so the
// page runs under the services' strict Content-Security-Policy.
"use strict";
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    // Relative: /docs -> /openapi.json, and the same under a proxy's path prefix.
    url: "openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // Swagger UI would otherwise send the document to validator.swagger.io for a badge.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
