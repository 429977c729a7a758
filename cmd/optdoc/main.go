// Command optdoc prints docs/options.md from the plugin's option table.
package main

import (
	"fmt"

	"github.com/gokafka/gokafka/conf"
)

func main() { fmt.Print(conf.Markdown()) }
