// Package demo holds a VAT return of the real one's shape, for `make run`, the tests
// and the benchmark where ../shared (with the real return) is absent.
package demo

import _ "embed"

// VATReturn is a small omzetbelasting XBRL instance.
//
//go:embed omzetbelasting-demo.xbrl
var VATReturn []byte
