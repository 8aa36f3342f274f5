package configcheck

// The smallest shapes paerser needs to decode the gateway's configuration the way Traefik
// v3.6 does, without importing Traefik: field names (matched case-insensitively by paerser)
// and the allowEmpty/"-" tags copy Traefik's dynamic.Configuration and static Experimental.
// Everything the check does not inspect is a map[string]any, which paerser fills with the
// raw values (as it does for a plugin's options). A middleware kind Traefik does not know is
// an error here too ("field not found, node: <kind>").

// dynamicConfig is Traefik's dynamic.Configuration, reduced.
type dynamicConfig struct {
	HTTP *httpConfig
	TCP  map[string]any
	UDP  map[string]any
	TLS  map[string]any
}

type httpConfig struct {
	Routers           map[string]any
	Services          map[string]any
	Middlewares       map[string]*middleware
	Models            map[string]any
	ServersTransports map[string]any `label:"-"`
}

// middleware lists every middleware kind of Traefik v3.6.12's dynamic.Middleware.
type middleware struct {
	AddPrefix         map[string]any
	StripPrefix       map[string]any
	StripPrefixRegex  map[string]any
	ReplacePath       map[string]any
	ReplacePathRegex  map[string]any
	Chain             map[string]any
	IPWhiteList       map[string]any
	IPAllowList       map[string]any
	Headers           map[string]any
	Errors            map[string]any
	RateLimit         map[string]any
	RedirectRegex     map[string]any
	RedirectScheme    map[string]any
	BasicAuth         map[string]any
	DigestAuth        map[string]any
	ForwardAuth       map[string]any
	InFlightReq       map[string]any
	Buffering         map[string]any
	CircuitBreaker    map[string]any
	Compress          map[string]any `label:"allowEmpty" file:"allowEmpty"`
	PassTLSClientCert map[string]any
	Retry             map[string]any
	ContentType       map[string]any `label:"allowEmpty" file:"allowEmpty"`
	GrpcWeb           map[string]any

	// Plugin is Traefik's map[string]dynamic.PluginConf (PluginConf is map[string]any).
	Plugin map[string]pluginConf
}

type pluginConf map[string]any

// kinds returns the middleware kinds set in m (Traefik requires exactly one), with the raw
// options of the non-plugin kinds.
func (m *middleware) kinds() map[string]map[string]any {
	out := map[string]map[string]any{}
	add := func(name string, v map[string]any) {
		if v != nil {
			out[name] = v
		}
	}
	add("addPrefix", m.AddPrefix)
	add("stripPrefix", m.StripPrefix)
	add("stripPrefixRegex", m.StripPrefixRegex)
	add("replacePath", m.ReplacePath)
	add("replacePathRegex", m.ReplacePathRegex)
	add("chain", m.Chain)
	add("ipWhiteList", m.IPWhiteList)
	add("ipAllowList", m.IPAllowList)
	add("headers", m.Headers)
	add("errors", m.Errors)
	add("rateLimit", m.RateLimit)
	add("redirectRegex", m.RedirectRegex)
	add("redirectScheme", m.RedirectScheme)
	add("basicAuth", m.BasicAuth)
	add("digestAuth", m.DigestAuth)
	add("forwardAuth", m.ForwardAuth)
	add("inFlightReq", m.InFlightReq)
	add("buffering", m.Buffering)
	add("circuitBreaker", m.CircuitBreaker)
	add("compress", m.Compress)
	add("passTLSClientCert", m.PassTLSClientCert)
	add("retry", m.Retry)
	add("contentType", m.ContentType)
	add("grpcWeb", m.GrpcWeb)
	if m.Plugin != nil {
		out["plugin"] = nil
	}
	return out
}

// staticConfig is the part of Traefik's static configuration the check reads.
type staticConfig struct {
	Experimental *experimental
}

type experimental struct {
	Plugins                map[string]any
	LocalPlugins           map[string]*localPlugin
	AbortOnPluginFailure   bool
	FastProxy              map[string]any `label:"allowEmpty" file:"allowEmpty"`
	OTLPLogs               bool
	Knative                bool
	KubernetesIngressNGINX bool
	KubernetesGateway      bool
}

type localPlugin struct {
	ModuleName string
	Settings   map[string]any
}
