/*
 * Agent manifests: which event types and typed fields an agent build supplies. The verifier
 * checks every pack against one (P1). Parsed with jansson (a manifest is small, read once, and
 * comes from the publisher's own tree or the agent's own binary); every name is checked for
 * length, UTF-8 and uniqueness within its scope, and every count against limits.h, so a
 * manifest object always describes a well-formed set of unique (event, field, type) triples.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "content/pack.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

struct mfield {
	char *name;
	enum rf_ftype type;
};

/* One logsource an event is declared for: each key NULL (absent) or a name. */
struct mlogsource {
	char *product, *category, *service;
};

struct mevent {
	char *name;
	size_t n_fields;
	struct mfield *fields;
	bool open;   /* "other_fields": "string": any other valid name is a string */
	size_t n_ls; /* declared logsources (0: the compiler derives the name) */
	struct mlogsource *ls;
	char *time; /* "time": the field holding the event's time, or NULL */
};

struct rf_manifest {
	char *agent, *version;
	char *product; /* Sigma logsource product ("windows"), or NULL: any */
	size_t n_events;
	struct mevent *events;
};

void rf_manifest_free(struct rf_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_events; i++) {
		for (size_t j = 0; j < m->events[i].n_fields; j++)
			free(m->events[i].fields[j].name);
		free(m->events[i].fields);
		free(m->events[i].name);
		for (size_t j = 0; j < m->events[i].n_ls; j++) {
			free(m->events[i].ls[j].product);
			free(m->events[i].ls[j].category);
			free(m->events[i].ls[j].service);
		}
		free(m->events[i].ls);
		free(m->events[i].time);
	}
	free(m->events);
	free(m->agent);
	free(m->version);
	free(m->product);
	free(m);
}

/* A name: non-empty, <= RF_NAME_MAX, printable ASCII without spaces or quotes (they appear in
 * messages, JSON output and event lines). */
static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n > RF_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
			return false;
	}
	return true;
}

static int get_name(json_t *obj, const char *key, const char *where, char **ret, struct rf_diag *d)
{
	json_t *v = json_object_get(obj, key);
	char q[96];

	if (!json_is_string(v))
		return rf_diag_report(d, -EBADMSG, "manifest: %s: \"%s\" must be a string", where,
				      key);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (!name_ok(s, n))
		return rf_diag_report(
		    d, -EBADMSG,
		    "manifest: %s: \"%s\" '%s' is not a valid name (1-%u printable "
		    "ASCII bytes, no spaces or quotes)",
		    where, key, rf_diag_quote(q, sizeof(q), s, n), RF_NAME_MAX);
	char *c = strdup(s);
	if (!c)
		return -ENOMEM;
	*ret = c;
	return 0;
}

static int parse_type(const char *s, enum rf_ftype *ret)
{
	if (!strcmp(s, "string"))
		*ret = RF_FT_STRING;
	else if (!strcmp(s, "int"))
		*ret = RF_FT_INT;
	else if (!strcmp(s, "ip"))
		*ret = RF_FT_IP;
	else
		return -EBADMSG;
	return 0;
}

/* An event's optional "logsource": one object or an array of objects, each with at least one
 * of "product", "category", "service" (names); no other keys. */
static int parse_logsources(json_t *jl, struct mevent *ev, struct rf_diag *d)
{
	static const char *const keys[] = {"product", "category", "service"};
	size_t n;
	int r;

	if (!jl)
		return 0;
	n = json_is_array(jl) ? json_array_size(jl) : 1;
	if ((!json_is_array(jl) && !json_is_object(jl)) || n == 0 || n > RF_MANIFEST_LOGSOURCES_MAX)
		return rf_diag_report(d, -EBADMSG,
				      "manifest: event %s: \"logsource\" must be an object or an "
				      "array of 1-%u objects",
				      ev->name, RF_MANIFEST_LOGSOURCES_MAX);
	ev->ls = calloc(n, sizeof(*ev->ls));
	if (!ev->ls)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_is_array(jl) ? json_array_get(jl, i) : jl;
		char where[64 + RF_NAME_MAX];
		char **dst[3] = {&ev->ls[i].product, &ev->ls[i].category, &ev->ls[i].service};
		const char *k;
		json_t *v;
		size_t have = 0;

		ev->n_ls = i + 1;
		snprintf(where, sizeof(where), "event %s logsource", ev->name);
		if (!json_is_object(o))
			return rf_diag_report(d, -EBADMSG, "manifest: %s must be an object", where);
		json_object_foreach(o, k, v)
		{
			size_t j = 0;
			while (j < 3 && strcmp(k, keys[j]))
				j++;
			if (j == 3)
				return rf_diag_report(
				    d, -EBADMSG,
				    "manifest: %s: unknown key (product, category "
				    "and service are known)",
				    where);
			r = get_name(o, keys[j], where, dst[j], d);
			if (r < 0)
				return r;
			have++;
		}
		if (!have)
			return rf_diag_report(d, -EBADMSG, "manifest: %s is empty", where);
	}
	return 0;
}

static int parse_event(json_t *je, size_t ei, struct mevent *ev, struct rf_diag *d)
{
	char where[64 + RF_NAME_MAX];
	int r;

	snprintf(where, sizeof(where), "events[%zu]", ei);
	if (!json_is_object(je))
		return rf_diag_report(d, -EBADMSG, "manifest: %s must be an object", where);
	r = get_name(je, "name", where, &ev->name, d);
	if (r < 0)
		return r;
	json_t *jf = json_object_get(je, "fields");
	if (!json_is_array(jf))
		return rf_diag_report(d, -EBADMSG,
				      "manifest: event %s: \"fields\" must be an array", ev->name);
	size_t nf = json_array_size(jf);
	if (nf > RF_MANIFEST_FIELDS_MAX)
		return rf_diag_report(d, -E2BIG, "manifest: event %s has %zu fields (limit %u)",
				      ev->name, nf, RF_MANIFEST_FIELDS_MAX);
	ev->fields = calloc(nf ? nf : 1, sizeof(*ev->fields));
	if (!ev->fields)
		return -ENOMEM;
	for (size_t i = 0; i < nf; i++) {
		json_t *f = json_array_get(jf, i);
		snprintf(where, sizeof(where), "event %s fields[%zu]", ev->name, i);
		if (!json_is_object(f))
			return rf_diag_report(d, -EBADMSG, "manifest: %s must be an object", where);
		r = get_name(f, "name", where, &ev->fields[i].name, d);
		if (r < 0)
			return r;
		ev->n_fields = i + 1;
		json_t *t = json_object_get(f, "type");
		if (!json_is_string(t) || parse_type(json_string_value(t), &ev->fields[i].type) < 0)
			return rf_diag_report(d, -EBADMSG,
					      "manifest: event %s field %s: \"type\" must be "
					      "\"string\", \"int\" or \"ip\"",
					      ev->name, ev->fields[i].name);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(ev->fields[j].name, ev->fields[i].name))
				return rf_diag_report(d, -EBADMSG,
						      "manifest: event %s: duplicate field %s",
						      ev->name, ev->fields[i].name);
	}
	ev->n_fields = nf;
	json_t *of = json_object_get(je, "other_fields");
	if (of) {
		if (!json_is_string(of) || strcmp(json_string_value(of), "string"))
			return rf_diag_report(d, -EBADMSG,
					      "manifest: event %s: \"other_fields\" must be "
					      "\"string\"",
					      ev->name);
		ev->open = true;
	}
	/* Optional: the field that holds the event's time, for correlations (docs/sigma.md
	 * "Time"). One the event supplies: a declared field, or any name of an open event. */
	if (json_object_get(je, "time")) {
		snprintf(where, sizeof(where), "event %s", ev->name);
		r = get_name(je, "time", where, &ev->time, d);
		if (r < 0)
			return r;
		bool have = ev->open;
		for (size_t i = 0; i < nf && !have; i++)
			have = !strcmp(ev->fields[i].name, ev->time);
		if (!have)
			return rf_diag_report(d, -EBADMSG,
					      "manifest: event %s: \"time\" %s is not one of its "
					      "fields",
					      ev->name, ev->time);
	}
	return parse_logsources(json_object_get(je, "logsource"), ev, d);
}

int rf_manifest_parse(const uint8_t *p, size_t n, struct rf_manifest **ret, struct rf_diag *d)
{
	json_error_t jerr;
	struct rf_manifest *m = NULL;
	json_t *root = NULL;
	int r;

	if (n > RF_MANIFEST_MAX)
		return rf_diag_report(d, -E2BIG, "manifest: %zu bytes (limit %u)", n,
				      RF_MANIFEST_MAX);
	root = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return rf_diag_report(d, -EBADMSG,
				      "manifest: invalid JSON at line %d column %d: %s", jerr.line,
				      jerr.column, jerr.text);
	if (!json_is_object(root)) {
		r = rf_diag_report(d, -EBADMSG, "manifest: top level must be an object");
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		r = -ENOMEM;
		goto out;
	}
	r = get_name(root, "agent", "top level", &m->agent, d);
	if (r < 0)
		goto out;
	r = get_name(root, "version", "top level", &m->version, d);
	if (r < 0)
		goto out;
	/* Optional (manifests before 1.2.0 have none): the Sigma product this agent's events come
	 * from; rules for another product are refused by the compiler. */
	if (json_object_get(root, "product")) {
		r = get_name(root, "product", "top level", &m->product, d);
		if (r < 0)
			goto out;
	}
	json_t *je = json_object_get(root, "events");
	if (!json_is_array(je)) {
		r = rf_diag_report(d, -EBADMSG, "manifest: \"events\" must be an array");
		goto out;
	}
	size_t ne = json_array_size(je);
	if (ne > RF_MANIFEST_EVENTS_MAX) {
		r = rf_diag_report(d, -E2BIG, "manifest: %zu events (limit %u)", ne,
				   RF_MANIFEST_EVENTS_MAX);
		goto out;
	}
	m->events = calloc(ne ? ne : 1, sizeof(*m->events));
	if (!m->events) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ne; i++) {
		m->n_events = i + 1;
		r = parse_event(json_array_get(je, i), i, &m->events[i], d);
		if (r < 0)
			goto out;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(m->events[j].name, m->events[i].name)) {
				r = rf_diag_report(d, -EBADMSG, "manifest: duplicate event %s",
						   m->events[i].name);
				goto out;
			}
	}
	*ret = m;
	m = NULL;
	r = 0;
out:
	rf_manifest_free(m);
	json_decref(root);
	return r;
}

const char *rf_manifest_agent(const struct rf_manifest *m)
{
	return m->agent;
}

const char *rf_manifest_version(const struct rf_manifest *m)
{
	return m->version;
}

const char *rf_manifest_product(const struct rf_manifest *m)
{
	return m->product;
}

int rf__manifest_event_index(const struct rf_manifest *m, const char *event)
{
	for (size_t i = 0; i < m->n_events; i++)
		if (!strcmp(m->events[i].name, event))
			return (int)i;
	return -ENOENT;
}

bool rf_manifest_has_event(const struct rf_manifest *m, const char *event)
{
	return rf__manifest_event_index(m, event) >= 0;
}

int rf_manifest_field_type(const struct rf_manifest *m, const char *event, const char *field)
{
	int e = rf__manifest_event_index(m, event);

	if (e < 0)
		return -ENOENT;
	for (size_t i = 0; i < m->events[e].n_fields; i++)
		if (!strcmp(m->events[e].fields[i].name, field))
			return (int)m->events[e].fields[i].type;
	if (m->events[e].open && name_ok(field, strlen(field)))
		return RF_FT_STRING;
	return -ENOENT;
}

bool rf_manifest_event_open(const struct rf_manifest *m, const char *event)
{
	int e = rf__manifest_event_index(m, event);

	return e >= 0 && m->events[e].open;
}

static bool key_eq(const char *want, const char *have, size_t have_len)
{
	if (!want || !have)
		return !want && !have;
	return strlen(want) == have_len && !memcmp(want, have, have_len);
}

int rf_manifest_logsource_event(const struct rf_manifest *m, const char *product,
				size_t product_len, const char *category, size_t category_len,
				const char *service, size_t service_len, const char **ret)
{
	for (size_t i = 0; i < m->n_events; i++)
		for (size_t j = 0; j < m->events[i].n_ls; j++) {
			const struct mlogsource *l = &m->events[i].ls[j];
			if (key_eq(l->product, product, product_len) &&
			    key_eq(l->category, category, category_len) &&
			    key_eq(l->service, service, service_len)) {
				*ret = m->events[i].name;
				return 1;
			}
		}
	return 0;
}

bool rf_manifest_event_declared(const struct rf_manifest *m, const char *event)
{
	int e = rf__manifest_event_index(m, event);

	return e >= 0 && m->events[e].n_ls > 0;
}

const char *rf_manifest_event_time(const struct rf_manifest *m, const uint8_t *event,
				   size_t event_len)
{
	for (size_t i = 0; i < m->n_events; i++)
		if (strlen(m->events[i].name) == event_len &&
		    !memcmp(m->events[i].name, event, event_len))
			return m->events[i].time;
	return NULL;
}

bool rf__manifest_supplies_product(const struct rf_manifest *m, const char *event,
				   const char *product, const char **ret_has)
{
	int e = rf__manifest_event_index(m, event);
	const char *has = m->product;

	if (e >= 0 && m->events[e].n_ls > 0) {
		has = NULL;
		for (size_t j = 0; j < m->events[e].n_ls; j++) {
			const char *lp = m->events[e].ls[j].product;
			if (lp && !strcmp(lp, product))
				return true;
			if (lp && !has)
				has = lp;
		}
	} else if (!has || !strcmp(has, product)) {
		return true;
	}
	*ret_has = has;
	return false;
}

size_t rf_manifest_event_nfields(const struct rf_manifest *m, const char *event)
{
	int e = rf__manifest_event_index(m, event);

	return e < 0 ? 0 : m->events[e].n_fields;
}

size_t rf__manifest_nevents(const struct rf_manifest *m)
{
	return m->n_events;
}

const char *rf__manifest_event_name(const struct rf_manifest *m, size_t ev)
{
	return m->events[ev].name;
}

size_t rf__manifest_event_nfields_at(const struct rf_manifest *m, size_t ev)
{
	return m->events[ev].n_fields;
}

const char *rf__manifest_field_name(const struct rf_manifest *m, size_t ev, size_t i)
{
	return m->events[ev].fields[i].name;
}

enum rf_ftype rf__manifest_field_type_at(const struct rf_manifest *m, size_t ev, size_t i)
{
	return m->events[ev].fields[i].type;
}

bool rf__manifest_event_open_at(const struct rf_manifest *m, size_t ev)
{
	return m->events[ev].open;
}

/* Append field name (string) to ev, owned. */
static int add_field(struct mevent *ev, size_t *cap, const char *name, enum rf_ftype type)
{
	if (ev->n_fields == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct mfield *nf = realloc(ev->fields, nc * sizeof(*nf));
		if (!nf)
			return -ENOMEM;
		ev->fields = nf;
		*cap = nc;
	}
	if (!(ev->fields[ev->n_fields].name = strdup(name)))
		return -ENOMEM;
	ev->fields[ev->n_fields++].type = type;
	return 0;
}

int rf__manifest_with_pack_fields(const struct rf_manifest *m, const struct rf_pack *pk,
				  struct rf_manifest **ret)
{
	struct rf_manifest *c;
	bool any = false;
	int r = -ENOMEM;

	for (size_t i = 0; i < m->n_events; i++)
		any |= m->events[i].open;
	*ret = NULL;
	if (!any)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->events = calloc(m->n_events ? m->n_events : 1, sizeof(*c->events));
	if (!c->events || !(c->agent = strdup(m->agent)) || !(c->version = strdup(m->version)))
		goto fail;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct mevent *s = &m->events[i];
		struct mevent *d = &c->events[i];
		size_t cap = 0;

		c->n_events = i + 1;
		if (!(d->name = strdup(s->name)))
			goto fail;
		d->open = s->open;
		if (s->time && !(d->time = strdup(s->time)))
			goto fail;
		for (size_t f = 0; f < s->n_fields; f++)
			if (add_field(d, &cap, s->fields[f].name, s->fields[f].type) < 0)
				goto fail;
		if (!s->open)
			continue;
		for (uint32_t f = 0; f < pk->n_fields; f++) {
			const char *fn = rf__pack_str(pk, pk->fields[f].name);
			bool have = false;
			if (strcmp(rf__pack_str(pk, pk->fields[f].event), s->name))
				continue;
			for (size_t k = 0; k < d->n_fields && !have; k++)
				have = !strcmp(d->fields[k].name, fn);
			if (!have && add_field(d, &cap, fn, RF_FT_STRING) < 0)
				goto fail;
		}
	}
	*ret = c;
	return 0;
fail:
	rf_manifest_free(c);
	return r;
}
