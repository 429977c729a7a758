// Command noop is a Fluent Bit Go output plugin that acknowledges every
// chunk without reading it: the end-to-end benchmark's baseline for what the
// C test host and the Go runtime cost by themselves. Build it with
// -buildmode=c-shared.
package main

import "C"

import (
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "gokafka", "no-op baseline")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	output.FLBPluginSetContext(plugin, "noop")
	return output.FLB_OK
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	return output.FLB_OK
}

//export FLBPluginExitCtx
func FLBPluginExitCtx(ctx unsafe.Pointer) int { return output.FLB_OK }

func main() {}
