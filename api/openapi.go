package api

import (
	_ "embed" // the OpenAPI document
	"net/http"
	"strconv"
)

// OpenAPI is the API's OpenAPI 3.1 document, written by hand and kept beside the code
// it describes; e2e/api_test.go validates real responses against it.
//
//go:embed openapi.json
var OpenAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(OpenAPI)))
	h.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(OpenAPI)
}
