import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerExtensionsValidatorCallback;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallback;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A broker-side OAUTHBEARER callback handler for tests that checks AWS MSK IAM tokens the way
 * Amazon MSK does. Such a token (made by AWS's aws-msk-iam-sasl-signer libraries) is the
 * base64url encoding, without padding, of a SigV4 presigned URL
 * https://kafka.REGION.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-...; the handler
 * recomputes its signature with the secret key of the access key id it names.
 *
 * <p>The known keys are options of the listener's OAuthBearerLoginModule JAAS entry, one per
 * key, named like the users of Kafka's PLAIN module: user_ACCESS_KEY_ID="SECRET_ACCESS_KEY".
 * An accepted token's principal is its access key id. A refused one gets the error status
 * invalid_token with the reason in the scope field (clients show it), and the reason is logged.
 */
public class MskIamValidator implements AuthenticateCallbackHandler {
	private static final Logger log = LoggerFactory.getLogger(MskIamValidator.class);
	private static final Pattern HOST = Pattern.compile("kafka\\.([a-z0-9-]+)\\.amazonaws\\.com");
	private static final DateTimeFormatter AMZ_DATE = DateTimeFormatter.ofPattern("uuuuMMdd'T'HHmmss'Z'");
	private static final long SKEW_MS = 60_000;
	private static final String EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

	private final Map<String, String> secrets = new HashMap<>();
	private String clusterRegion; // the region tokens must be signed for; any when null

	/** A reason to refuse a token. */
	private static class Refused extends Exception {
		private static final long serialVersionUID = 1;

		Refused(String reason) {
			super(reason, null, false, false);
		}
	}

	private record Token(String value, String principalName, long lifetimeMs, Long startTimeMs)
			implements OAuthBearerToken {
		@Override
		public Set<String> scope() {
			return Set.of();
		}
	}

	@Override
	public void configure(Map<String, ?> configs, String mechanism, List<AppConfigurationEntry> entries) {
		for (AppConfigurationEntry entry : entries) {
			entry.getOptions().forEach((k, v) -> {
				if (k.startsWith("user_")) {
					secrets.put(k.substring("user_".length()), (String) v);
				} else if (k.equals("region")) {
					clusterRegion = (String) v;
				}
			});
		}
		if (secrets.isEmpty()) {
			throw new ConfigException("MskIamValidator: no user_<access key id>=\"<secret>\" option in the JAAS entry");
		}
	}

	@Override
	public void handle(Callback[] callbacks) throws UnsupportedCallbackException {
		for (Callback callback : callbacks) {
			if (callback instanceof OAuthBearerValidatorCallback c) {
				try {
					c.token(validate(c.tokenValue()));
				} catch (Refused e) {
					log.info("MSK IAM token refused: {}", e.getMessage());
					c.error("invalid_token", e.getMessage(), null);
				}
			} else if (callback instanceof OAuthBearerExtensionsValidatorCallback c) {
				// Like Kafka's unsecured validator: every extension is fine.
				c.inputExtensions().map().keySet().forEach(c::valid);
			} else {
				throw new UnsupportedCallbackException(callback);
			}
		}
	}

	@Override
	public void close() {
	}

	private OAuthBearerToken validate(String token) throws Refused {
		URI url;
		try {
			url = new URI(new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8));
		} catch (IllegalArgumentException | URISyntaxException e) {
			throw new Refused("not a base64url-encoded URL");
		}
		Map<String, String> q = query(url.getRawQuery());

		if (!"https".equals(url.getScheme())) {
			throw new Refused("scheme " + url.getScheme() + ", want https");
		}
		String host = url.getRawAuthority();
		Matcher m = HOST.matcher(host == null ? "" : host);
		if (!m.matches()) {
			throw new Refused("host " + host + " is not kafka.<region>.amazonaws.com");
		}
		String path = url.getRawPath() == null || url.getRawPath().isEmpty() ? "/" : url.getRawPath();
		if (!path.equals("/")) {
			throw new Refused("path " + path + ", want /");
		}
		expect(q, "Action", "kafka-cluster:Connect");
		expect(q, "X-Amz-Algorithm", "AWS4-HMAC-SHA256");
		expect(q, "X-Amz-SignedHeaders", "host");

		// X-Amz-Credential: ACCESS_KEY_ID/yyyymmdd/REGION/kafka-cluster/aws4_request
		String[] cred = param(q, "X-Amz-Credential").split("/", -1);
		if (cred.length != 5 || !cred[4].equals("aws4_request")) {
			throw new Refused("malformed X-Amz-Credential");
		}
		String accessKey = cred[0], day = cred[1], region = cred[2], service = cred[3];
		if (!region.equals(m.group(1))) {
			throw new Refused("credential region " + region + " is not the host's " + m.group(1));
		}
		if (clusterRegion != null && !region.equals(clusterRegion)) {
			throw new Refused("signed for region " + region + ", the cluster's is " + clusterRegion);
		}
		if (!service.equals("kafka-cluster")) {
			throw new Refused("credential service " + service + ", want kafka-cluster");
		}
		String secret = secrets.get(accessKey);
		if (secret == null) {
			throw new Refused("unknown access key id " + accessKey);
		}

		String amzDate = param(q, "X-Amz-Date");
		long dateMs, expiresS;
		try {
			dateMs = LocalDateTime.parse(amzDate, AMZ_DATE).toInstant(ZoneOffset.UTC).toEpochMilli();
			expiresS = Long.parseLong(param(q, "X-Amz-Expires"));
		} catch (DateTimeParseException | NumberFormatException e) {
			throw new Refused("malformed X-Amz-Date or X-Amz-Expires");
		}
		if (!amzDate.startsWith(day)) {
			throw new Refused("credential date " + day + " is not the day of X-Amz-Date " + amzDate);
		}
		if (expiresS < 1 || expiresS > 604800) {
			throw new Refused("X-Amz-Expires " + expiresS + " is not in 1..604800");
		}
		long now = System.currentTimeMillis(), expiryMs = dateMs + expiresS * 1000;
		if (dateMs > now + SKEW_MS) {
			throw new Refused("X-Amz-Date " + amzDate + " is in the future");
		}
		if (expiryMs < now) {
			throw new Refused("expired at " + Instant.ofEpochMilli(expiryMs));
		}

		// The canonical request covers every parameter but the signature and User-Agent (the
		// signer adds it after signing), sorted by encoded name.
		TreeMap<String, String> signed = new TreeMap<>();
		q.forEach((k, v) -> {
			if (!k.equals("X-Amz-Signature") && !k.equals("User-Agent")) {
				signed.put(uriEncode(k), uriEncode(v));
			}
		});
		StringBuilder canonicalQuery = new StringBuilder();
		signed.forEach((k, v) -> canonicalQuery.append(canonicalQuery.isEmpty() ? "" : "&").append(k).append('=').append(v));
		String canonicalRequest = String.join("\n", "GET", path, canonicalQuery, "host:" + host, "", "host", EMPTY_SHA256);
		String scope = day + "/" + region + "/" + service + "/aws4_request";
		String stringToSign = String.join("\n", "AWS4-HMAC-SHA256", amzDate, scope, hex(sha256(canonicalRequest)));
		byte[] key = hmac(("AWS4" + secret).getBytes(StandardCharsets.UTF_8), day);
		key = hmac(key, region);
		key = hmac(key, service);
		key = hmac(key, "aws4_request");
		String want = hex(hmac(key, stringToSign));
		String got = param(q, "X-Amz-Signature");
		if (!MessageDigest.isEqual(want.getBytes(StandardCharsets.UTF_8), got.getBytes(StandardCharsets.UTF_8))) {
			throw new Refused("signature mismatch for access key id " + accessKey);
		}
		log.info("MSK IAM token accepted: access key id {}, expires {}", accessKey, Instant.ofEpochMilli(expiryMs));
		return new Token(token, accessKey, expiryMs, dateMs);
	}

	/** The decoded parameters of a query string; a repeated one is refused. */
	private static Map<String, String> query(String raw) throws Refused {
		Map<String, String> q = new HashMap<>();
		if (raw == null || raw.isEmpty()) {
			return q;
		}
		for (String pair : raw.split("&", -1)) {
			int eq = pair.indexOf('=');
			String k, v;
			try {
				k = URLDecoder.decode(eq < 0 ? pair : pair.substring(0, eq), StandardCharsets.UTF_8);
				v = eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
			} catch (IllegalArgumentException e) {
				throw new Refused("malformed query parameter");
			}
			if (q.put(k, v) != null) {
				throw new Refused("repeated parameter " + k);
			}
		}
		return q;
	}

	private static String param(Map<String, String> q, String name) throws Refused {
		String v = q.get(name);
		if (v == null) {
			throw new Refused("no " + name);
		}
		return v;
	}

	private static void expect(Map<String, String> q, String name, String want) throws Refused {
		String v = param(q, name);
		if (!v.equals(want)) {
			throw new Refused(name + " " + v + ", want " + want);
		}
	}

	/** SigV4's URI encoding: every UTF-8 byte but A-Z a-z 0-9 - _ . ~ as %XX. */
	private static String uriEncode(String s) {
		StringBuilder b = new StringBuilder();
		for (byte c : s.getBytes(StandardCharsets.UTF_8)) {
			if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
					|| c == '-' || c == '_' || c == '.' || c == '~') {
				b.append((char) c);
			} else {
				b.append('%').append(HexFormat.of().withUpperCase().toHexDigits(c));
			}
		}
		return b.toString();
	}

	private static byte[] sha256(String s) {
		try {
			return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
		} catch (GeneralSecurityException e) {
			throw new IllegalStateException(e);
		}
	}

	private static byte[] hmac(byte[] key, String data) {
		try {
			Mac mac = Mac.getInstance("HmacSHA256");
			mac.init(new SecretKeySpec(key, "HmacSHA256"));
			return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
		} catch (GeneralSecurityException e) {
			throw new IllegalStateException(e);
		}
	}

	private static String hex(byte[] b) {
		return HexFormat.of().formatHex(b);
	}
}
