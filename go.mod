module github.com/gokafka/gokafka

go 1.26.8

require (
	github.com/confluentinc/confluent-kafka-go/v2 v2.15.0
	github.com/fluent/fluent-bit-go v0.0.0-20230731091245-a7a013e2473c
	github.com/tinylib/msgp v1.6.5
)

require (
	github.com/philhofer/fwd v1.2.0 // indirect
	github.com/ugorji/go/codec v1.1.7 // indirect
)
