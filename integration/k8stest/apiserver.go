// Package k8stest proves deploy/kubernetes/ with the real Traefik: its Kubernetes CRD provider
// (providers.kubernetesCRD with endpoint, token and CA file) reads the manifests from a small
// stand-in Kubernetes API server written here, over TLS, and the test then checks what
// Traefik built and sends requests through it.
//
// The stand-in serves what client-go's informers ask for: a list (GET on a collection) and a
// watch (the same with watch=true) for every kind, namespaced or cluster-wide, as JSON, plus
// the discovery documents (/api, /apis, /api/v1, /apis/<group>/<version>, /version). Kinds
// without objects answer empty lists. It keeps one resource version counter and a history
// of events, so a watch started at version N first gets every later change.
package k8stest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// resource is one kind the stand-in serves.
type resource struct {
	group, version, kind, plural string
	namespaced                   bool
}

func (r resource) groupVersion() string {
	if r.group == "" {
		return r.version
	}
	return r.group + "/" + r.version
}

// resources are the kinds Traefik v3.6.12's kubernetesCRD provider lists and watches
// (pkg/provider/kubernetes/crd/client.go, WatchAll): ten traefik.io/v1alpha1 kinds, Services,
// EndpointSlices, ConfigMaps and Secrets per watched namespace, and Nodes cluster-wide.
var resources = []resource{
	{"traefik.io", "v1alpha1", "IngressRoute", "ingressroutes", true},
	{"traefik.io", "v1alpha1", "IngressRouteTCP", "ingressroutetcps", true},
	{"traefik.io", "v1alpha1", "IngressRouteUDP", "ingressrouteudps", true},
	{"traefik.io", "v1alpha1", "Middleware", "middlewares", true},
	{"traefik.io", "v1alpha1", "MiddlewareTCP", "middlewaretcps", true},
	{"traefik.io", "v1alpha1", "TLSOption", "tlsoptions", true},
	{"traefik.io", "v1alpha1", "TLSStore", "tlsstores", true},
	{"traefik.io", "v1alpha1", "TraefikService", "traefikservices", true},
	{"traefik.io", "v1alpha1", "ServersTransport", "serverstransports", true},
	{"traefik.io", "v1alpha1", "ServersTransportTCP", "serverstransporttcps", true},
	{"", "v1", "Service", "services", true},
	{"", "v1", "Secret", "secrets", true},
	{"", "v1", "ConfigMap", "configmaps", true},
	{"", "v1", "Node", "nodes", false},
	{"discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true},
}

// event is one change, as a watch sends it.
type event struct {
	rv     int
	res    resource
	typ    string // ADDED, MODIFIED, DELETED
	object map[string]any
}

// APIServer is the stand-in Kubernetes API. Every request must carry "Authorization: Bearer
// <Token>"; others get 401 and are counted in Unauthorized.
type APIServer struct {
	Token string

	mu      sync.Mutex
	rv      int
	objects map[string]map[string]any // kind/namespace/name -> object
	history []event
	changed chan struct{} // closed and replaced on every change (wakes watches)
	stop    chan struct{}

	requests     map[string]int // "GET /path" (watch marked) -> count
	unauthorized int
}

// NewAPIServer returns an empty stand-in that accepts token.
func NewAPIServer(token string) *APIServer {
	return &APIServer{
		Token:    token,
		objects:  map[string]map[string]any{},
		changed:  make(chan struct{}),
		stop:     make(chan struct{}),
		requests: map[string]int{},
	}
}

// Close ends every open watch.
func (s *APIServer) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
}

func resourceOfKind(apiVersion, kind string) (resource, bool) {
	for _, r := range resources {
		if r.kind == kind && r.groupVersion() == apiVersion {
			return r, true
		}
	}
	return resource{}, false
}

// Put adds or replaces an object (a decoded manifest: apiVersion, kind, metadata.name,
// metadata.namespace) and records the event watches will send. It fails for kinds the
// stand-in does not serve.
func (s *APIServer) Put(obj map[string]any) error {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	res, ok := resourceOfKind(apiVersion, kind)
	if !ok {
		return fmt.Errorf("kind %s %s is not served by the stand-in API", apiVersion, kind)
	}
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		return fmt.Errorf("%s without metadata", kind)
	}
	name, _ := meta["name"].(string)
	ns, _ := meta["namespace"].(string)
	if name == "" || (res.namespaced && ns == "") {
		return fmt.Errorf("%s: metadata.name and metadata.namespace are required", kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := kind + "/" + ns + "/" + name
	typ := "ADDED"
	uid := fmt.Sprintf("00000000-0000-4000-8000-%012d", len(s.objects)+1)
	if old, exists := s.objects[key]; exists {
		typ = "MODIFIED"
		uid, _ = old["metadata"].(map[string]any)["uid"].(string)
	}
	s.rv++
	meta["resourceVersion"] = strconv.Itoa(s.rv)
	meta["uid"] = uid
	if _, ok := meta["creationTimestamp"]; !ok {
		meta["creationTimestamp"] = time.Now().UTC().Format(time.RFC3339)
	}
	s.objects[key] = obj
	s.history = append(s.history, event{rv: s.rv, res: res, typ: typ, object: obj})
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// Requests returns how often each path was asked for ("GET /apis/…", watches marked
// "WATCH"), and the number of requests refused for a missing or wrong token.
func (s *APIServer) Requests() (map[string]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out, s.unauthorized
}

// ServeHTTP routes discovery, list and watch requests.
func (s *APIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	watch := r.URL.Query().Get("watch")
	isWatch := watch == "true" || watch == "1"
	verb := "GET"
	if isWatch {
		verb = "WATCH"
	}
	s.mu.Lock()
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		s.unauthorized++
		s.mu.Unlock()
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", "a valid bearer token is required")
		return
	}
	s.requests[r.Method+" "+verb+" "+r.URL.Path]++
	s.mu.Unlock()
	if r.Method != http.MethodGet {
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "the stand-in API is read-only")
		return
	}
	if s.discovery(w, r.URL.Path) {
		return
	}
	res, ns, ok := parseCollection(r.URL.Path)
	if !ok {
		writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	sel := parseSelector(r.URL.Query().Get("labelSelector"))
	if isWatch {
		from, _ := strconv.Atoi(r.URL.Query().Get("resourceVersion"))
		timeout, _ := strconv.Atoi(r.URL.Query().Get("timeoutSeconds"))
		s.watch(w, r, res, ns, sel, from, timeout)
		return
	}
	s.list(w, res, ns, sel)
}

// parseCollection splits /api/v1[/namespaces/<ns>]/<plural> and
// /apis/<group>/<version>[/namespaces/<ns>]/<plural>.
func parseCollection(p string) (resource, string, bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	var gv string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		gv = parts[1]
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		gv = parts[1] + "/" + parts[2]
		parts = parts[3:]
	default:
		return resource{}, "", false
	}
	ns := ""
	if len(parts) == 3 && parts[0] == "namespaces" {
		ns = parts[1]
		parts = parts[2:]
	}
	if len(parts) != 1 {
		return resource{}, "", false
	}
	for _, r := range resources {
		if r.plural == parts[0] && r.groupVersion() == gv && (r.namespaced || ns == "") {
			return r, ns, true
		}
	}
	return resource{}, "", false
}

func (s *APIServer) matching(res resource, ns string, sel selector) []map[string]any {
	var items []map[string]any
	for key, obj := range s.objects {
		if !strings.HasPrefix(key, res.kind+"/") {
			continue
		}
		if objectMatches(obj, res, ns, sel) {
			items = append(items, obj)
		}
	}
	sort.Slice(items, func(i, j int) bool { return objectName(items[i]) < objectName(items[j]) })
	return items
}

func objectMatches(obj map[string]any, res resource, ns string, sel selector) bool {
	if kind, _ := obj["kind"].(string); kind != res.kind {
		return false
	}
	meta, _ := obj["metadata"].(map[string]any)
	if ns != "" && meta["namespace"] != ns {
		return false
	}
	labels := map[string]string{}
	if l, ok := meta["labels"].(map[string]any); ok {
		for k, v := range l {
			labels[k], _ = v.(string)
		}
	}
	return sel.matches(labels)
}

func objectName(obj map[string]any) string {
	meta, _ := obj["metadata"].(map[string]any)
	ns, _ := meta["namespace"].(string)
	name, _ := meta["name"].(string)
	return ns + "/" + name
}

func (s *APIServer) list(w http.ResponseWriter, res resource, ns string, sel selector) {
	s.mu.Lock()
	items := s.matching(res, ns, sel)
	rv := s.rv
	body, err := json.Marshal(map[string]any{
		"apiVersion": res.groupVersion(),
		"kind":       res.kind + "List",
		"metadata":   map[string]any{"resourceVersion": strconv.Itoa(rv)},
		"items":      nonNil(items),
	})
	s.mu.Unlock()
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func nonNil(items []map[string]any) []map[string]any {
	if items == nil {
		return []map[string]any{}
	}
	return items
}

// watch streams the events after version from, then every new one, until the client goes
// away, timeoutSeconds pass or the server closes.
func (s *APIServer) watch(w http.ResponseWriter, r *http.Request, res resource, ns string, sel selector, from, timeout int) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeStatus(w, http.StatusInternalServerError, "InternalError", "streaming unsupported")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(time.Duration(timeout) * time.Second)
		defer t.Stop()
		deadline = t.C
	}
	enc := json.NewEncoder(w)
	for {
		s.mu.Lock()
		var pending []event
		for _, ev := range s.history {
			if ev.rv > from && ev.res == res && objectMatches(ev.object, res, ns, sel) {
				pending = append(pending, ev)
			}
		}
		changed := s.changed
		s.mu.Unlock()
		for _, ev := range pending {
			s.mu.Lock()
			err := enc.Encode(map[string]any{"type": ev.typ, "object": ev.object})
			s.mu.Unlock()
			if err != nil {
				return
			}
			from = ev.rv
		}
		if len(pending) > 0 {
			flusher.Flush()
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case <-deadline:
			return
		}
	}
}

// discovery answers the discovery documents client-go's discovery client would read.
func (s *APIServer) discovery(w http.ResponseWriter, p string) bool {
	var doc any
	switch p = strings.TrimSuffix(p, "/"); {
	case p == "/version":
		doc = map[string]any{"major": "1", "minor": "34", "gitVersion": "v1.34.0-pavilion-standin", "platform": "linux/amd64"}
	case p == "/api":
		doc = map[string]any{"kind": "APIVersions", "versions": []string{"v1"},
			"serverAddressByClientCIDRs": []any{map[string]any{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}}}
	case p == "/apis":
		var groups []any
		seen := map[string]bool{}
		for _, r := range resources {
			if r.group == "" || seen[r.group] {
				continue
			}
			seen[r.group] = true
			gv := map[string]any{"groupVersion": r.groupVersion(), "version": r.version}
			groups = append(groups, map[string]any{"name": r.group, "versions": []any{gv}, "preferredVersion": gv})
		}
		doc = map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
	default:
		gv := strings.TrimPrefix(strings.TrimPrefix(p, "/apis/"), "/api/")
		if !strings.HasPrefix(p, "/api") {
			return false
		}
		var list []any
		for _, r := range resources {
			if r.groupVersion() == gv {
				list = append(list, map[string]any{"name": r.plural, "kind": r.kind, "namespaced": r.namespaced,
					"verbs": []string{"get", "list", "watch"}, "singularName": strings.ToLower(r.kind)})
			}
		}
		if list == nil {
			return false
		}
		doc = map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}
	}
	body, _ := json.Marshal(doc)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return true
}

func writeStatus(w http.ResponseWriter, code int, reason, msg string) {
	body, _ := json.Marshal(map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": msg, "reason": reason, "code": code})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// selector is a label selector of terms "k=v", "k==v", "k!=v", "k" and "!k", all required.
type selector []string

func parseSelector(s string) selector {
	var out selector
	for _, term := range strings.Split(s, ",") {
		if term = strings.TrimSpace(term); term != "" {
			out = append(out, term)
		}
	}
	return out
}

func (sel selector) matches(labels map[string]string) bool {
	for _, term := range sel {
		if k, v, ok := strings.Cut(term, "!="); ok {
			if labels[strings.TrimSpace(k)] == strings.TrimSpace(v) {
				return false
			}
			continue
		}
		if k, v, ok := strings.Cut(strings.Replace(term, "==", "=", 1), "="); ok {
			if got, has := labels[strings.TrimSpace(k)]; !has || got != strings.TrimSpace(v) {
				return false
			}
			continue
		}
		if strings.HasPrefix(term, "!") {
			if _, has := labels[term[1:]]; has {
				return false
			}
			continue
		}
		if _, has := labels[term]; !has {
			return false
		}
	}
	return true
}
