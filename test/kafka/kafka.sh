#!/usr/bin/env bash
# kafka.sh: a real Apache Kafka broker (KRaft, combined broker+controller) on 127.0.0.1 for
# tests, benchmarks and `make run`, run from the Apache Kafka jars on Maven Central. No Docker.
#
# Requirements: bash, Java 17+ (`java` on PATH; Debian: openjdk-17-jre-headless), Maven 3.x
# (`mvn`, only to fill the cache; needs access to Maven Central), openssl (only for --ssl-port),
# a JDK (`javac`, only for --msk-iam-user; Debian: openjdk-17-jdk-headless), coreutils and
# util-linux (flock, setsid, timeout).
#
# The broker is pinned by pom.xml next to this script (org.apache.kafka:kafka_2.13 4.3.1 and
# the log4j slf4j binding). Its jars are cached under ${GOKAFKA_CACHE:-$HOME/.cache/gokafka}:
# dist-<pom hash>/libs (the classpath), dist-<pom hash>/kafka.jsa (an AppCDS archive that
# makes JVM start faster, made once by a short training run), dist-<pom hash>/msk-iam-<source
# hash> (MskIamValidator.java compiled, for --msk-iam-user) and m2/ (Maven's local repo).
#
# Usage (a directory D holds one broker or one cluster: config, data, kafka.log, kafka.pid):
#   kafka.sh fetch
#       Resolve the jars into the cache and build the AppCDS archive. Idempotent; instant when
#       warm. Every start runs it first.
#   kafka.sh start --dir D --port P [--controller-port C] [--sasl-port S] [--ssl-port T]
#                  [--scram-user NAME=PASSWORD]... [--msk-iam-user AKID=SECRET]...
#                  [--msk-iam-region REGION] [--owner-pid PID]
#       Wipe D, format KRaft storage, start one broker in the background, wait until it
#       answers a metadata request that lists it, print its bootstrap address (127.0.0.1:P).
#       C defaults to P+1. --sasl-port adds a SASL_PLAINTEXT listener with SCRAM-SHA-512,
#       user admin / admin-secret (plus the --scram-user ones). --ssl-port adds an SSL listener
#       with a certificate made by openssl; clients trust D/ca.pem (SAN IP:127.0.0.1,
#       DNS:localhost). --msk-iam-user (needs --sasl-port): the SASL listener also takes
#       OAUTHBEARER with AWS MSK IAM tokens (SigV4 presigned URLs, as AWS's
#       aws-msk-iam-sasl-signer libraries make them) signed with one of these access key ids
#       and secret keys, checked by MskIamValidator.java next to this script; the principal is
#       the access key id; with --msk-iam-region, only tokens signed for that region.
#       --owner-pid: SIGKILL the broker when that process exits (tests).
#   kafka.sh resume --dir D [--owner-pid PID]
#       Start the stopped broker of D again with its data and ports (outage tests).
#   kafka.sh stop --dir D [--timeout SECONDS]
#       SIGTERM every broker of D (a cluster: all nodes at once), SIGKILL after the timeout
#       (default 20 s).
#   kafka.sh kill --dir D           SIGKILL every broker of D.
#   kafka.sh status --dir D         Exit 0 and print the pids if a broker of D runs.
#   kafka.sh wipe --dir D           Kill every broker of D and delete D.
#   kafka.sh cluster-start --dir D --ports A,B,C [--controller-ports X,Y,Z] [--owner-pid PID]
#       Wipe D, start three nodes (node ids 1..3, in D/node1..3; controller ports default to
#       A+1,B+1,C+1), replication factor 3, min.insync.replicas 2; wait until node 1's
#       metadata lists all three; print the bootstrap list.
#   kafka.sh node-stop --dir D --node N [--timeout SECONDS]
#   kafka.sh node-start --dir D --node N [--owner-pid PID]
#       Stop one node of a cluster (SIGTERM, controlled shutdown) / start it again.
#   kafka.sh cluster-stop --dir D [--timeout SECONDS]     Same as stop.
#   kafka.sh quota --bootstrap HOST:PORT --client-id ID [--producer-byte-rate N]
#       Limit what the clients with client.id ID may produce to the cluster to N bytes/s, or
#       without --producer-byte-rate lift that limit (kafka-configs --entity-type clients).
#
# Environment: GOKAFKA_CACHE (cache dir); GOKAFKA_PORT_RANGE (lo-hi, default 29100-29999:
# where the one-time training run of `fetch` takes its two ports); KAFKA_HEAP (default 512m);
# KAFKA_JVM_OPTS (more JVM options); KAFKA_START_TIMEOUT (seconds to readiness, default 90).
#
# All output but the bootstrap address goes to stderr. A failed start prints the first errors
# and the tail of D/kafka.log, and kills the broker. From a warm cache a start takes 1.5-3 s,
# a cluster 5-10 s (2 cores); a cold cache adds about 10 s.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${GOKAFKA_CACHE:-$HOME/.cache/gokafka}
DIST=$CACHE/dist-$(sha256sum <"$HERE/pom.xml" | cut -c1-12)
START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
SCRAM_ADMIN_PASSWORD=admin-secret
SSL_PASSWORD=gokafka-test
SECRET_RE='^[^"\\[:space:]]+$' # an --msk-iam-user secret: no quote, backslash or space

die() {
	echo "kafka.sh: $*" >&2
	exit 1
}
need() { command -v "$1" >/dev/null || die "$1 not found on PATH; $2"; }

# ---------------------------------------------------------------- jars and JVM

fetch() {
	need java "install Java 17+ (Debian: openjdk-17-jre-headless)"
	[[ -f $DIST/ready ]] && return 0
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock -w 900 9 || die "timed out waiting for $CACHE/.lock"
	if [[ ! -f $DIST/ready ]]; then
		if [[ ! -f $DIST/libs.done ]]; then
			need mvn "install Maven (Debian: maven)"
			echo "kafka.sh: resolving Apache Kafka jars into $DIST" >&2
			rm -rf "$DIST"
			mkdir -p "$DIST"
			# Three tries: Maven Central can fail a request now and then.
			local try
			for try in 1 2 3; do
				mvn -B -f "$HERE/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
					dependency:copy-dependencies -DincludeScope=runtime \
					-DoutputDirectory="$DIST/libs" >"$CACHE/mvn.log" 2>&1 && break
				((try < 3)) || die "mvn failed 3 times; last lines of $CACHE/mvn.log:"$'\n'"$(tail -n 30 "$CACHE/mvn.log")"
				echo "kafka.sh: mvn failed (try $try of 3), trying again" >&2
				sleep 5
			done
			touch "$DIST/libs.done"
		fi
		train_cds
		touch "$DIST/ready"
	fi
	exec 9>&-
}

# JVM options for the broker (BROKER_JVM) and for the storage tool (TOOL_JVM).
set_jvm_opts() {
	local heap=${KAFKA_HEAP:-512m} cds=()
	[[ -f $DIST/kafka.jsa ]] && cds=(-XX:SharedArchiveFile="$DIST/kafka.jsa" -Xlog:cds=off -Xlog:cds+dynamic=off)
	BROKER_JVM=(-Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
		-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
		-Dlog4j2.configurationFile="$HERE/log4j2.properties" "${cds[@]}")
	# shellcheck disable=SC2206
	BROKER_JVM+=(${KAFKA_JVM_OPTS:-})
	TOOL_JVM=(-Xmx256m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
		-Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dgokafka.log.level=WARN "${cds[@]}")
}

# One broker start and stop with -XX:ArchiveClassesAtExit: the classes it loads are archived
# and later JVMs map them instead of parsing jars (start about 1 s faster, per JVM).
train_cds() {
	[[ -f $DIST/kafka.jsa ]] && return 0
	echo "kafka.sh: building the AppCDS archive (one-time broker start)" >&2
	local dir port
	dir=$(mktemp -d)
	port=$(free_port_pair)
	configure "$dir" 1 "$port" $((port + 1)) "1@127.0.0.1:$((port + 1))" 1 1
	format "$dir" "$(new_cluster_id)"
	launch "$dir" "" -XX:ArchiveClassesAtExit="$DIST/kafka.jsa.tmp"
	wait_ready "$dir" 1
	stop_dirs 60 "$dir"
	rm -rf "$dir"
	[[ -s $DIST/kafka.jsa.tmp ]] || die "no AppCDS archive was written"
	mv "$DIST/kafka.jsa.tmp" "$DIST/kafka.jsa"
}

# Two consecutive ports that nothing listens on, in $GOKAFKA_PORT_RANGE (the training run).
free_port_pair() {
	local range=${GOKAFKA_PORT_RANGE:-29100-29999} p i
	local lo=${range%-*} hi=${range#*-}
	for ((i = 0; i < 100; i++)); do
		p=$((lo + RANDOM % (hi - lo)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
			! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free port pair in $range"
}

# MskIamValidator.java compiled against the broker's jars, once, into VALIDATOR_CP (a directory
# of the cache named by the source's hash).
compile_validator() {
	local src=$HERE/MskIamValidator.java
	VALIDATOR_CP=$DIST/msk-iam-$(sha256sum <"$src" | cut -c1-12)
	[[ -d $VALIDATOR_CP ]] && return 0
	need javac "install a JDK (Debian: openjdk-17-jdk-headless)"
	exec 9>"$CACHE/.lock"
	flock -w 900 9 || die "timed out waiting for $CACHE/.lock"
	if [[ ! -d $VALIDATOR_CP ]]; then
		echo "kafka.sh: compiling $src" >&2
		rm -rf "$VALIDATOR_CP.tmp"
		mkdir -p "$VALIDATOR_CP.tmp"
		javac --release 17 -cp "$DIST/libs/*" -d "$VALIDATOR_CP.tmp" "$src" >"$CACHE/javac.log" 2>&1 ||
			die "javac failed:"$'\n'"$(cat "$CACHE/javac.log")"
		mv "$VALIDATOR_CP.tmp" "$VALIDATOR_CP"
	fi
	exec 9>&-
}

# ---------------------------------------------------------------- configuration and storage

new_cluster_id() { # what Uuid.randomUuid().toString() gives: 16 random bytes, base64url
	local id
	while :; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
		[[ $id != -* ]] && echo "$id" && return 0
	done
}

# configure DIR NODE_ID PORT CONTROLLER_PORT VOTERS REPLICATION MIN_ISR [SASL_PORT] [SSL_PORT]
#           [MSK_IAM_OPTIONS]   (JAAS options for MskIamValidator: ' user_AKID="SECRET"'...)
configure() {
	local dir=$1 id=$2 port=$3 cport=$4 voters=$5 rf=$6 isr=$7 sasl=${8:-} ssl=${9:-} iam=${10:-}
	local listeners="PLAINTEXT://127.0.0.1:$port"
	[[ -n $sasl ]] && listeners+=",SASL_PLAINTEXT://127.0.0.1:$sasl"
	[[ -n $ssl ]] && listeners+=",SSL://127.0.0.1:$ssl"
	mkdir -p "$dir"
	cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=$listeners,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
log.dirs=$dir/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
unclean.leader.election.enable=false
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
# Keep records whatever their timestamp: tests send fixed event times, days to years back, and
# Kafka deletes a segment once its newest timestamp is older than retention.ms (7 days).
log.retention.ms=-1
# Fence a killed broker after 4.5 s instead of 9 s: a killed broker that restarts can only
# register again once its old session has expired.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4500
EOF
	if [[ -n $sasl ]]; then
		cat >>"$dir/server.properties" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512${iam:+,OAUTHBEARER}
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$SCRAM_ADMIN_PASSWORD";
EOF
	fi
	if [[ -n $iam ]]; then
		# The broker logs itself in too, with an unsecured token of its own (never used: the
		# brokers talk over PLAINTEXT); without unsecuredLoginStringClaim_sub it does not start.
		cat >>"$dir/server.properties" <<EOF
listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker"$iam;
listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class=MskIamValidator
EOF
	fi
	if [[ -n $ssl ]]; then
		make_certs "$dir"
		cat >>"$dir/server.properties" <<EOF
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/broker.p12
ssl.keystore.password=$SSL_PASSWORD
ssl.key.password=$SSL_PASSWORD
EOF
	fi
}

# A CA (DIR/ca.pem, for clients) and a broker certificate signed by it, in DIR/broker.p12.
make_certs() {
	local dir=$1
	need openssl "install openssl"
	(
		cd "$dir"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
			-subj "/CN=gokafka test CA" -keyout ca.key -out ca.pem
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-subj "/CN=localhost" -keyout broker.key -out broker.csr
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >broker.ext
		openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
			-extfile broker.ext -out broker.pem
		openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
			-passout "pass:$SSL_PASSWORD" -out broker.p12
	) >/dev/null 2>"$dir/openssl.log" || die "openssl failed: $(cat "$dir/openssl.log")"
}

# format DIR CLUSTER_ID [SCRAM_SPEC...]   (SCRAM_SPEC: name=password)
format() {
	local dir=$1 id=$2 user
	shift 2
	local -a args=()
	for user in "$@"; do
		args+=(--add-scram "SCRAM-SHA-512=[name=${user%%=*},password=${user#*=}]")
	done
	set_jvm_opts
	java "${TOOL_JVM[@]}" -cp "$DIST/libs/*" kafka.tools.StorageTool format --config "$dir/server.properties" \
		--cluster-id "$id" "${args[@]}" >"$dir/format.log" 2>&1 ||
		die "formatting $dir failed: $(cat "$dir/format.log")"
}

# ---------------------------------------------------------------- processes

# The pid of the broker of DIR, if it runs (a zombie or a reused pid does not count).
broker_pid() {
	local dir=$1 pid state
	[[ -f $dir/kafka.pid ]] || return 1
	pid=$(<"$dir/kafka.pid")
	[[ -r /proc/$pid/stat ]] || return 1
	state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1) || return 1
	[[ $state != Z ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/server.properties" || return 1
	echo "$pid"
}

# launch DIR OWNER_PID [JVM_OPTION...]: start the broker of DIR in the background.
launch() {
	local dir=$1 owner=$2 pid cp="$DIST/libs/*"
	shift 2
	if pid=$(broker_pid "$dir"); then die "a broker already runs in $dir (pid $pid)"; fi
	if grep -q '=MskIamValidator$' "$dir/server.properties"; then
		compile_validator
		cp+=":$VALIDATOR_CP"
	fi
	rm -f "$dir/kafka.pid"
	touch "$dir/kafka.log"
	stat -c %s "$dir/kafka.log" >"$dir/kafka.log.offset"
	set_jvm_opts
	# The JVM's temporary files (lz4-java unpacks its native library) stay in DIR.
	mkdir -p "$dir/tmp"
	# shellcheck disable=SC2016
	setsid bash -c 'echo $$ >"$1/kafka.pid"; shift; exec "$@"' launch "$dir" \
		java "${BROKER_JVM[@]}" -Djava.io.tmpdir="$dir/tmp" "$@" -cp "$cp" kafka.Kafka "$dir/server.properties" \
		</dev/null >>"$dir/kafka.log" 2>&1 9>&- &
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s $dir/kafka.pid ]] && break
		sleep 0.05
	done
	[[ -s $dir/kafka.pid ]] || die "the broker of $dir did not start"
	if [[ -n $owner ]]; then
		# A watchdog: SIGKILL the broker once the owner (a test binary) is gone.
		# shellcheck disable=SC2016
		setsid bash -c 'while kill -0 "$1" && kill -0 "$2"; do sleep 1; done 2>/dev/null
			kill -0 "$1" 2>/dev/null || kill -KILL "$2" 2>/dev/null' watchdog \
			"$owner" "$(<"$dir/kafka.pid")" </dev/null >/dev/null 2>&1 9>&- &
	fi
}

# The node ids listed by a Metadata (v4) request to 127.0.0.1:PORT, one per line.
metadata_ids() {
	local out
	# Request: size 23, api key 3, version 4, correlation id 1, client id "kafka.sh",
	# no topics, no auto-creation.
	# shellcheck disable=SC2016
	out=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "\0\0\0\x17\0\x03\0\x04\0\0\0\x01\0\x08kafka.sh\0\0\0\0\0" >&3
		n=$(dd bs=4 count=1 iflag=fullblock status=none <&3 | od -An -tu4 --endian=big)
		dd bs=$((n)) count=1 iflag=fullblock status=none <&3 | od -An -v -tu1' metadata "$1" \
		2>/dev/null) || return 1
	local -a b
	read -r -d '' -a b <<<"$out" || true
	# Response: correlation id, throttle ms, then brokers: [node id, host, port, rack].
	local i=12 k n=$((b[8] << 24 | b[9] << 16 | b[10] << 8 | b[11]))
	((${#b[@]} > 12 && n < 100)) || return 1
	for ((k = 0; k < n; k++)); do
		echo $((b[i] << 24 | b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3]))
		i=$((i + 4))
		i=$((i + 2 + (b[i] << 8 | b[i + 1]) + 4))
		if ((b[i] == 255 && b[i + 1] == 255)); then i=$((i + 2)); else i=$((i + 2 + (b[i] << 8 | b[i + 1]))); fi
	done
}

conf_get() { sed -n "s/^$2=//p" "$1/server.properties"; }
plain_port() { conf_get "$1" listeners | sed 's/^PLAINTEXT:\/\/127.0.0.1:\([0-9]*\).*/\1/'; }

# wait_ready DIR NODE_ID...: the broker of DIR logged "Kafka Server started" since its launch
# and its metadata lists all of NODE_ID. On failure: log tail, kill, exit.
wait_ready() {
	local dir=$1 pid offset port ids id
	shift
	pid=$(<"$dir/kafka.pid")
	offset=$(<"$dir/kafka.log.offset")
	port=$(plain_port "$dir")
	local deadline=$((SECONDS + START_TIMEOUT))
	# grep reads the whole tail, not a pipe: tail would die of SIGPIPE once grep -q quit early,
	# failing the check under pipefail.
	until grep -q 'Kafka Server started' < <(tail -c +$((offset + 1)) "$dir/kafka.log"); do
		broker_pid "$dir" >/dev/null || start_failed "$dir" "the broker exited"
		((SECONDS < deadline)) || start_failed "$dir" "not started after $START_TIMEOUT s"
		sleep 0.1
	done
	while :; do
		ids=$(metadata_ids "$port" || true)
		local missing=0
		for id in "$@"; do grep -qx "$id" <<<"$ids" || missing=1; done
		((missing == 0)) && return 0
		broker_pid "$dir" >/dev/null || start_failed "$dir" "the broker exited"
		((SECONDS < deadline)) ||
			start_failed "$dir" "metadata from port $port lists [$(echo $ids)], not all of [$*], after $START_TIMEOUT s"
		sleep 0.2
	done
}

start_failed() {
	local dir=$1 pid offset
	offset=$(cat "$dir/kafka.log.offset" 2>/dev/null || echo 0)
	{
		echo "kafka.sh: start failed in $dir: $2"
		echo "kafka.sh: first errors in $dir/kafka.log:"
		tail -c +$((offset + 1)) "$dir/kafka.log" | grep -m 3 -A 3 -E '^\[[^]]*\] (ERROR|FATAL)' || true
		echo "kafka.sh: last lines of $dir/kafka.log:"
		tail -n 30 "$dir/kafka.log" || true
	} >&2
	if pid=$(broker_pid "$dir"); then kill -KILL "$pid" 2>/dev/null || true; fi
	exit 1
}

# The directories of the brokers of D: D itself, or D/node1..3 for a cluster.
broker_dirs() {
	local d
	[[ -f $1/server.properties ]] && echo "$1"
	for d in "$1"/node*; do [[ -f $d/server.properties ]] && echo "$d"; done
	return 0
}

# Whether process PID has exited (gone, or a zombie).
gone() {
	local state
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 0
	[[ -z $state || $state == Z ]]
}

# stop_dirs TIMEOUT DIR...: SIGTERM all at once, SIGKILL the ones still running at TIMEOUT.
stop_dirs() {
	local timeout=$1 dir pid
	shift
	local -a pids=()
	for dir in "$@"; do
		if pid=$(broker_pid "$dir"); then
			kill -TERM "$pid" && kill -CONT "$pid" && pids+=("$pid") || true
		fi
		rm -f "$dir/kafka.pid"
	done
	local deadline=$((SECONDS + timeout))
	for pid in "${pids[@]}"; do
		while ! gone "$pid"; do
			if ((SECONDS >= deadline)); then
				echo "kafka.sh: pid $pid: no exit $timeout s after SIGTERM, sending SIGKILL" >&2
				kill -KILL "$pid" 2>/dev/null || true
				deadline=$((SECONDS + 10))
			fi
			sleep 0.1
		done
	done
}

kill_dirs() {
	local dir pid
	local -a pids=()
	for dir in "$@"; do
		if pid=$(broker_pid "$dir"); then kill -KILL "$pid" 2>/dev/null && pids+=("$pid") || true; fi
		rm -f "$dir/kafka.pid"
	done
	for pid in "${pids[@]}"; do
		while ! gone "$pid"; do sleep 0.05; done
	done
}

# Make D an empty directory of ours (refuse to wipe one that kafka.sh did not make).
fresh_dir() {
	local d=$1
	if [[ -e $d && ! -f $d/.gokafka-kafka && -n $(ls -A "$d" 2>/dev/null) ]]; then
		die "$d is not empty and was not made by kafka.sh; not wiping it"
	fi
	if [[ -e $d ]]; then
		mapfile -t dirs < <(broker_dirs "$d")
		for x in "${dirs[@]}"; do
			if broker_pid "$x" >/dev/null; then die "a broker runs in $x; stop it first"; fi
		done
		rm -rf "$d"
	fi
	mkdir -p "$d"
	touch "$d/.gokafka-kafka"
}

abs() { mkdir -p "$1" && (cd "$1" && pwd); }

# ---------------------------------------------------------------- commands

cmd=${1:-}
[[ -n $cmd ]] || die "usage: kafka.sh fetch|start|resume|stop|kill|status|wipe|cluster-start|node-stop|node-start|cluster-stop|quota ... (see the header of $0)"
shift
dir="" port="" cport="" sasl="" ssl="" ports="" cports="" node="" owner="" timeout=20
bootstrap="" client="" byte_rate=""
users=() iam_users=() iam_region=""
while (($#)); do
	(($# >= 2)) || die "$1 needs a value"
	case $1 in
	--dir) dir=$2 ;;
	--port) port=$2 ;;
	--controller-port) cport=$2 ;;
	--sasl-port) sasl=$2 ;;
	--ssl-port) ssl=$2 ;;
	--scram-user) users+=("$2") ;;
	--msk-iam-user) iam_users+=("$2") ;;
	--msk-iam-region) iam_region=$2 ;;
	--ports) ports=$2 ;;
	--controller-ports) cports=$2 ;;
	--node) node=$2 ;;
	--owner-pid) owner=$2 ;;
	--timeout) timeout=$2 ;;
	--bootstrap) bootstrap=$2 ;;
	--client-id) client=$2 ;;
	--producer-byte-rate) byte_rate=$2 ;;
	*) die "unknown option $1" ;;
	esac
	shift 2
done
if [[ $cmd != fetch && $cmd != quota ]]; then
	[[ -n $dir ]] || die "$cmd needs --dir"
	if [[ $cmd == start || $cmd == cluster-start ]]; then dir=$(abs "$dir"); fi
	if [[ ! -d $dir ]]; then
		case $cmd in
		stop | cluster-stop | kill | wipe) exit 0 ;; # nothing to do
		status) exit 1 ;;
		*) die "no directory $dir" ;;
		esac
	fi
	dir=$(cd "$dir" && pwd)
fi
((${#iam_users[@]} == 0)) || [[ $cmd == start ]] || die "--msk-iam-user is only for start"
if [[ -n $node ]]; then
	[[ -f $dir/node$node/server.properties ]] || die "no node $node in $dir"
fi

case $cmd in
fetch) fetch ;;
quota)
	[[ -n $bootstrap && -n $client && $byte_rate =~ ^[0-9]*$ ]] ||
		die "quota needs --bootstrap and --client-id, and takes --producer-byte-rate in bytes/s"
	change=(--delete-config producer_byte_rate)
	[[ -z $byte_rate ]] || change=(--add-config "producer_byte_rate=$byte_rate")
	fetch
	set_jvm_opts
	java "${TOOL_JVM[@]}" -cp "$DIST/libs/*" kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" \
		--alter "${change[@]}" --entity-type clients --entity-name "$client" >&2
	;;
start)
	[[ -n $port ]] || die "start needs --port"
	cport=${cport:-$((port + 1))}
	iam=""
	for u in "${iam_users[@]}"; do
		# An access key id is letters and digits; a secret goes in a JAAS quoted string.
		[[ $u == *=* && ${u%%=*} =~ ^[A-Za-z0-9]+$ && ${u#*=} =~ $SECRET_RE ]] ||
			die "--msk-iam-user $u: want AKID=SECRET, AKID letters and digits, SECRET without quotes, backslashes or spaces"
		iam+=" user_${u%%=*}=\"${u#*=}\""
	done
	[[ -z $iam_region || -n $iam ]] || die "--msk-iam-region needs --msk-iam-user"
	[[ -z $iam_region || $iam_region =~ ^[a-z0-9-]+$ ]] || die "--msk-iam-region $iam_region: not a region name"
	[[ -z $iam_region ]] || iam+=" region=\"$iam_region\""
	[[ -z $iam || -n $sasl ]] || die "--msk-iam-user needs --sasl-port"
	fetch
	[[ -z $iam ]] || compile_validator
	fresh_dir "$dir"
	configure "$dir" 1 "$port" "$cport" "1@127.0.0.1:$cport" 1 1 "$sasl" "$ssl" "$iam"
	if [[ -n $sasl ]]; then users=("admin=$SCRAM_ADMIN_PASSWORD" "${users[@]}"); fi
	format "$dir" "$(new_cluster_id)" "${users[@]}"
	launch "$dir" "$owner"
	wait_ready "$dir" 1
	echo "127.0.0.1:$port"
	;;
resume)
	[[ -f $dir/server.properties ]] || die "no broker in $dir (for a cluster node: node-start)"
	fetch
	launch "$dir" "$owner"
	wait_ready "$dir" "$(conf_get "$dir" node.id)"
	echo "127.0.0.1:$(plain_port "$dir")"
	;;
stop | cluster-stop)
	mapfile -t dirs < <(broker_dirs "$dir")
	stop_dirs "$timeout" "${dirs[@]}"
	;;
kill)
	mapfile -t dirs < <(broker_dirs "$dir")
	kill_dirs "${dirs[@]}"
	;;
status)
	mapfile -t dirs < <(broker_dirs "$dir")
	running=1
	for d in "${dirs[@]}"; do
		if pid=$(broker_pid "$d"); then echo "$d $pid" && running=0; fi
	done
	exit $running
	;;
wipe)
	[[ -f $dir/.gokafka-kafka ]] || die "$dir was not made by kafka.sh; not wiping it"
	mapfile -t dirs < <(broker_dirs "$dir")
	kill_dirs "${dirs[@]}"
	rm -rf "$dir"
	;;
cluster-start)
	IFS=, read -r -a p <<<"$ports"
	((${#p[@]} == 3)) || die "cluster-start needs --ports A,B,C"
	if [[ -n $cports ]]; then IFS=, read -r -a c <<<"$cports"; else c=($((p[0] + 1)) $((p[1] + 1)) $((p[2] + 1))); fi
	((${#c[@]} == 3)) || die "--controller-ports needs three ports"
	for x in "${c[@]}"; do
		[[ ,$ports, != *,$x,* ]] || die "controller port $x is also a broker port; use --controller-ports"
	done
	fetch
	fresh_dir "$dir"
	voters="1@127.0.0.1:${c[0]},2@127.0.0.1:${c[1]},3@127.0.0.1:${c[2]}"
	id=$(new_cluster_id)
	for n in 1 2 3; do
		configure "$dir/node$n" "$n" "${p[n - 1]}" "${c[n - 1]}" "$voters" 3 2
		format "$dir/node$n" "$id" &
	done
	for n in 1 2 3; do wait -n || die "formatting failed"; done
	for n in 1 2 3; do launch "$dir/node$n" "$owner"; done
	for n in 3 2 1; do wait_ready "$dir/node$n" "$n"; done
	wait_ready "$dir/node1" 1 2 3
	echo "127.0.0.1:${p[0]},127.0.0.1:${p[1]},127.0.0.1:${p[2]}"
	;;
node-stop)
	[[ -n $node ]] || die "node-stop needs --node"
	stop_dirs "$timeout" "$dir/node$node"
	;;
node-start)
	[[ -n $node ]] || die "node-start needs --node"
	fetch
	launch "$dir/node$node" "$owner"
	wait_ready "$dir/node$node" "$node"
	echo "127.0.0.1:$(plain_port "$dir/node$node")"
	;;
*) die "unknown command $cmd (see the header of $0)" ;;
esac
