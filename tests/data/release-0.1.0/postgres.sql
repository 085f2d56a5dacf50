
SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

CREATE TABLE api_keys (
    id character varying(24) NOT NULL,
    name character varying(128) NOT NULL,
    scopes json NOT NULL,
    secret_sha256 character varying(64) NOT NULL,
    rate_limit character varying(32),
    created_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone
);

CREATE TABLE change_counters (
    name character varying(32) NOT NULL,
    value integer NOT NULL
);

CREATE TABLE idempotency_keys (
    key character varying(240) NOT NULL,
    fingerprint character varying(64) NOT NULL,
    result_id character varying(64),
    created_at timestamp with time zone NOT NULL
);

CREATE TABLE jobs (
    id character varying(32) NOT NULL,
    key_id character varying(24),
    status character varying(16) NOT NULL,
    brand character varying(128) NOT NULL,
    model character varying(128) NOT NULL,
    client_ref character varying(128),
    priority character varying(16) NOT NULL,
    files json NOT NULL,
    attempts integer NOT NULL,
    lease_until timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    verdict character varying(16),
    error json
);

CREATE TABLE products (
    key character varying(260) NOT NULL,
    brand character varying(128) NOT NULL,
    model character varying(128) NOT NULL,
    thresholds json NOT NULL,
    created_at timestamp with time zone NOT NULL,
    seq integer NOT NULL
);

CREATE TABLE reference_embeddings (
    reference_id character varying(32) NOT NULL,
    model_version character varying(200) NOT NULL,
    vector bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    seq integer NOT NULL
);

CREATE TABLE reference_items (
    id character varying(32) NOT NULL,
    product_key character varying(260) NOT NULL,
    brand character varying(128) NOT NULL,
    model character varying(128) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    source character varying(128),
    notes character varying(2000),
    content_hash character varying(64) NOT NULL,
    body json NOT NULL,
    deleted_at timestamp with time zone,
    deleted_reason character varying(2000),
    seq integer NOT NULL
);

CREATE TABLE report_reviews (
    seq integer NOT NULL,
    report_id character varying(32) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    reviewer character varying(128) NOT NULL,
    decision character varying(16) NOT NULL,
    previous_verdict character varying(16) NOT NULL,
    verdict character varying(16) NOT NULL,
    reason character varying(4000) NOT NULL,
    prev_hash character varying(64) NOT NULL,
    hash character varying(64) NOT NULL
);

CREATE SEQUENCE report_reviews_seq_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE report_reviews_seq_seq OWNED BY report_reviews.seq;

CREATE TABLE reports (
    id character varying(32) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    client_ref character varying(128),
    brand character varying(128) NOT NULL,
    model character varying(128) NOT NULL,
    verdict character varying(16) NOT NULL,
    final_verdict character varying(16) NOT NULL,
    review_status character varying(16) NOT NULL,
    flagged boolean NOT NULL,
    key_id character varying(64),
    version integer NOT NULL,
    p_counterfeit double precision NOT NULL,
    classifier character varying(200) NOT NULL,
    body json NOT NULL
);

CREATE TABLE server_secrets (
    name character varying(32) NOT NULL,
    value character varying(128) NOT NULL
);

CREATE TABLE webhook_deliveries (
    id character varying(32) NOT NULL,
    key_id character varying(24) NOT NULL,
    job_id character varying(32) NOT NULL,
    event character varying(64) NOT NULL,
    url character varying(2048) NOT NULL,
    payload character varying NOT NULL,
    status character varying(16) NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at timestamp with time zone NOT NULL,
    last_status_code integer,
    last_error character varying(500),
    log json NOT NULL,
    created_at timestamp with time zone NOT NULL,
    delivered_at timestamp with time zone
);

CREATE TABLE webhooks (
    key_id character varying(24) NOT NULL,
    url character varying(2048) NOT NULL,
    secret character varying(128) NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

ALTER TABLE ONLY report_reviews ALTER COLUMN seq SET DEFAULT nextval('report_reviews_seq_seq'::regclass);

INSERT INTO api_keys VALUES ('e4b6a3da235c', 'ops', '["admin", "review", "submit"]', 'a5d9a8ba0b433a06edc65efd21071d760f3a95053d517dec140671636cf955d9', NULL, '2026-11-30 15:45:40.864196+00', NULL);

INSERT INTO change_counters VALUES ('references', 1);
INSERT INTO change_counters VALUES ('reviews', 1);

INSERT INTO idempotency_keys VALUES ('inspections:rel-0.1.0-1', 'c958d26dc516cae91d42f360fe4b5edd7e354c7f101b6dbc06078ffa27a9bee2', 'd0af4217b2434bccb35e4af47ab8a448', '2026-11-30 15:45:41.196238+00');

INSERT INTO jobs VALUES ('606a8fbbbfd5484e916709b26fa62792', 'e4b6a3da235c', 'succeeded', 'Castellan', 'Riva', 'rel-0.1.0-async', 'bulk', '{"overall": "0.bin", "logo": "1.bin", "stitching": "2.bin", "hardware": "3.bin", "label": "4.bin", "interior": "5.bin"}', 1, NULL, '2026-11-30 15:45:41.32143+00', '2026-11-30 15:45:41.389135+00', '2026-11-30 15:45:41.389135+00', 'authentic', 'null');

INSERT INTO products VALUES ('verlaine/amande', 'Verlaine', 'Amande', '{}', '2026-11-30 15:45:41.136676+00', 1);
INSERT INTO products VALUES ('verlaine/orsay', 'Verlaine', 'Orsay', '{}', '2026-11-30 15:45:41.136676+00', 1);
INSERT INTO products VALUES ('castellan/riva', 'Castellan', 'Riva', '{}', '2026-11-30 15:45:41.136676+00', 1);
INSERT INTO products VALUES ('castellan/lumen', 'Castellan', 'Lumen', '{}', '2026-11-30 15:45:41.136676+00', 1);
INSERT INTO products VALUES ('noor & kessler/dune', 'Noor & Kessler', 'Dune', '{}', '2026-11-30 15:45:41.136676+00', 1);
INSERT INTO products VALUES ('noor & kessler/atlas', 'Noor & Kessler', 'Atlas', '{}', '2026-11-30 15:45:41.136676+00', 1);

INSERT INTO report_reviews VALUES (1, 'd0af4217b2434bccb35e4af47ab8a448', '2026-11-30 15:45:41.308236+00', 'auditor-1', 'override', 'authentic', 'counterfeit', 'release 0.1.0 review', '0000000000000000000000000000000000000000000000000000000000000000', '9d627f82b6086cf6ed201e9b331a0dea6eb5e521a53eb8f42cf117cab755d430');

INSERT INTO reports VALUES ('d0af4217b2434bccb35e4af47ab8a448', '2026-11-30 15:45:41.226562+00', 'rel-0.1.0-sync', 'Castellan', 'Riva', 'authentic', 'counterfeit', 'overridden', false, 'e4b6a3da235c', 1, 0.032941244542598724, 'authentiq-default@0.2.0', '{"schema_version": "2", "id": "d0af4217b2434bccb35e4af47ab8a448", "created_at": "2026-11-30T15:45:41.226562+00:00", "client_ref": "rel-0.1.0-sync", "brand": "Castellan", "model": "Riva", "verdict": "authentic", "confidence": 0.967059, "probabilities": {"authentic": 0.967059, "counterfeit": 0.032941}, "reasons": [{"code": "classifier", "value": 0.0329, "detail": "The classifier''s counterfeit probability is 0.033."}, {"code": "no_references", "detail": "No genuine references of Castellan/Riva are enrolled for this model version; the verdict rests on the classifier alone."}, {"code": "score_authentic", "value": 0.0329, "detail": "Counterfeit probability 0.033 is below 0.052."}, {"code": "automated_decision", "detail": "This verdict was produced by automated means (an image classifier and a comparison with enrolled genuine references); it can be reviewed and overridden by a human auditor. Heatmaps show where the model looked, not proof of a flaw."}], "fusion": {"applied": false, "p_classifier": 0.032941, "p_counterfeit": 0.032941, "thresholds": {"classifier_authentic_below": 0.05154651105403899, "classifier_counterfeit_above": 0.6121303749084488, "authentic_below": 0.0241, "counterfeit_above": 0.9759, "min_similarity": 0.7354, "mismatch_margin": 0.02, "overridden": [], "applied_band": [0.05154651105403899, 0.6121303749084488]}}, "views": [{"view": "overall", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 72.29, "brightness": 124.3, "glare": 0.0, "attention": 0.2837}, {"view": "logo", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 55.76, "brightness": 70.9, "glare": 0.0, "attention": 0.0749}, {"view": "stitching", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 84.95, "brightness": 62.4, "glare": 0.0, "attention": 0.0}, {"view": "hardware", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 143.56, "brightness": 94.8, "glare": 0.0, "attention": 0.0534}, {"view": "label", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 351.17, "brightness": 125.7, "glare": 0.0, "attention": 0.1396}, {"view": "interior", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 72.1, "brightness": 175.0, "glare": 0.0, "attention": 0.4483}], "missing_views": [], "classifier": {"name": "authentiq-default", "version": "0.2.0", "precision": "int8-cpu", "backend": "onnxruntime", "device": "cpu", "engine_id": "authentiq-default.int8-cpu.onnx@sha256:1cf25a937cd5", "thresholds": {"authentic_below": 0.05154651105403899, "counterfeit_above": 0.6121303749084488}}, "statement_of_reasons": {"automated": true, "text": "This decision was made by automated means \u2014 an image classifier and a comparison with enrolled genuine reference items \u2014 without human involvement. It rests on the photos submitted and on the facts and reasons listed in this report.", "how_to_contest": "Ask the operator of this service for a human review, quoting report d0af4217b2434bccb35e4af47ab8a448. A reviewer can confirm or override the verdict; the automated verdict and every review stay on record."}, "timings": {"decode_ms": 15.6, "quality_ms": 1.98, "stitch_ms": 1.83, "queue_ms": 0.11, "inference_ms": 13.09, "batch_size": 1, "reference_search_ms": 1.03, "heatmap_ms": 48.2}, "links": {"self": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448", "page": "/reports/d0af4217b2434bccb35e4af47ab8a448", "pdf": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448.pdf", "views": {"overall": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/views/overall", "logo": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/views/logo", "stitching": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/views/stitching", "hardware": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/views/hardware", "label": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/views/label", "interior": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/views/interior"}}, "references": {"model_version": "authentiq-default@0.2.0", "k": 5, "claimed": {"brand": "Castellan", "model": "Riva", "count": 0, "best": null, "mean_top_k": null, "matches": []}, "other_products": []}, "submitted_by": {"key_id": "e4b6a3da235c"}, "heatmaps": {"classes": ["authentic"], "colormap": "inferno", "notice": "Heatmaps show where the model''s attention was when it scored the item, for the class named. They are an explanation of the model, not proof of where a defect is.", "images": {"authentic": {"overall": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/heatmaps/authentic/overall", "logo": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/heatmaps/authentic/logo", "stitching": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/heatmaps/authentic/stitching", "hardware": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/heatmaps/authentic/hardware", "label": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/heatmaps/authentic/label", "interior": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/heatmaps/authentic/interior", "overview": "/v1/reports/d0af4217b2434bccb35e4af47ab8a448/heatmaps/authentic/overview"}}}, "stored_files": ["hardware.jpg", "heatmap-authentic-hardware.webp", "heatmap-authentic-interior.webp", "heatmap-authentic-label.webp", "heatmap-authentic-logo.webp", "heatmap-authentic-overall.webp", "heatmap-authentic-overview.webp", "heatmap-authentic-stitching.webp", "interior.jpg", "label.jpg", "logo.jpg", "overall.jpg", "stitching.jpg"]}');
INSERT INTO reports VALUES ('606a8fbbbfd5484e916709b26fa62792', '2026-11-30 15:45:41.358146+00', 'rel-0.1.0-async', 'Castellan', 'Riva', 'authentic', 'authentic', 'unreviewed', false, 'e4b6a3da235c', 0, 0.032941244542598724, 'authentiq-default@0.2.0', '{"schema_version": "2", "id": "606a8fbbbfd5484e916709b26fa62792", "created_at": "2026-11-30T15:45:41.358146+00:00", "client_ref": "rel-0.1.0-async", "brand": "Castellan", "model": "Riva", "verdict": "authentic", "confidence": 0.967059, "probabilities": {"authentic": 0.967059, "counterfeit": 0.032941}, "reasons": [{"code": "classifier", "value": 0.0329, "detail": "The classifier''s counterfeit probability is 0.033."}, {"code": "no_references", "detail": "No genuine references of Castellan/Riva are enrolled for this model version; the verdict rests on the classifier alone."}, {"code": "score_authentic", "value": 0.0329, "detail": "Counterfeit probability 0.033 is below 0.052."}, {"code": "automated_decision", "detail": "This verdict was produced by automated means (an image classifier and a comparison with enrolled genuine references); it can be reviewed and overridden by a human auditor. Heatmaps show where the model looked, not proof of a flaw."}], "fusion": {"applied": false, "p_classifier": 0.032941, "p_counterfeit": 0.032941, "thresholds": {"classifier_authentic_below": 0.05154651105403899, "classifier_counterfeit_above": 0.6121303749084488, "authentic_below": 0.0241, "counterfeit_above": 0.9759, "min_similarity": 0.7354, "mismatch_margin": 0.02, "overridden": [], "applied_band": [0.05154651105403899, 0.6121303749084488]}}, "views": [{"view": "overall", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 72.29, "brightness": 124.3, "glare": 0.0, "attention": 0.2837}, {"view": "logo", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 55.76, "brightness": 70.9, "glare": 0.0, "attention": 0.0749}, {"view": "stitching", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 84.95, "brightness": 62.4, "glare": 0.0, "attention": 0.0}, {"view": "hardware", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 143.56, "brightness": 94.8, "glare": 0.0, "attention": 0.0534}, {"view": "label", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 351.17, "brightness": 125.7, "glare": 0.0, "attention": 0.1396}, {"view": "interior", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 72.1, "brightness": 175.0, "glare": 0.0, "attention": 0.4483}], "missing_views": [], "classifier": {"name": "authentiq-default", "version": "0.2.0", "precision": "int8-cpu", "backend": "onnxruntime", "device": "cpu", "engine_id": "authentiq-default.int8-cpu.onnx@sha256:1cf25a937cd5", "thresholds": {"authentic_below": 0.05154651105403899, "counterfeit_above": 0.6121303749084488}}, "statement_of_reasons": {"automated": true, "text": "This decision was made by automated means \u2014 an image classifier and a comparison with enrolled genuine reference items \u2014 without human involvement. It rests on the photos submitted and on the facts and reasons listed in this report.", "how_to_contest": "Ask the operator of this service for a human review, quoting report 606a8fbbbfd5484e916709b26fa62792. A reviewer can confirm or override the verdict; the automated verdict and every review stay on record."}, "timings": {"decode_ms": 12.5, "quality_ms": 8.8, "stitch_ms": 1.04, "queue_ms": 0.09, "inference_ms": 7.31, "batch_size": 1, "reference_search_ms": 0.18, "heatmap_ms": 25.74}, "links": {"self": "/v1/reports/606a8fbbbfd5484e916709b26fa62792", "page": "/reports/606a8fbbbfd5484e916709b26fa62792", "pdf": "/v1/reports/606a8fbbbfd5484e916709b26fa62792.pdf", "views": {"overall": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/views/overall", "logo": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/views/logo", "stitching": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/views/stitching", "hardware": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/views/hardware", "label": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/views/label", "interior": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/views/interior"}}, "references": {"model_version": "authentiq-default@0.2.0", "k": 5, "claimed": {"brand": "Castellan", "model": "Riva", "count": 0, "best": null, "mean_top_k": null, "matches": []}, "other_products": []}, "submitted_by": {"key_id": "e4b6a3da235c"}, "heatmaps": {"classes": ["authentic"], "colormap": "inferno", "notice": "Heatmaps show where the model''s attention was when it scored the item, for the class named. They are an explanation of the model, not proof of where a defect is.", "images": {"authentic": {"overall": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/overall", "logo": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/logo", "stitching": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/stitching", "hardware": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/hardware", "label": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/label", "interior": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/interior", "overview": "/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/overview"}}}, "stored_files": ["hardware.jpg", "heatmap-authentic-hardware.webp", "heatmap-authentic-interior.webp", "heatmap-authentic-label.webp", "heatmap-authentic-logo.webp", "heatmap-authentic-overall.webp", "heatmap-authentic-overview.webp", "heatmap-authentic-stitching.webp", "interior.jpg", "label.jpg", "logo.jpg", "overall.jpg", "stitching.jpg"]}');

INSERT INTO server_secrets VALUES ('session', '821dc874f961efd4f589e88a581174fd3bbccca21dc4e42a5176374f10d22b49');

INSERT INTO webhook_deliveries VALUES ('fca39f6d7d7640739829405ba7f3c434', 'e4b6a3da235c', '606a8fbbbfd5484e916709b26fa62792', 'inspection.completed', 'http://127.0.0.1:9/authentiq', '{"created_at":"2026-11-30T15:45:41.393017+00:00","data":{"job":{"attempts":1,"brand":"Castellan","client_ref":"rel-0.1.0-async","created_at":"2026-11-30T15:45:41.321430+00:00","error":null,"finished_at":"2026-11-30T15:45:41.389135+00:00","id":"606a8fbbbfd5484e916709b26fa62792","links":{"report":"/v1/reports/606a8fbbbfd5484e916709b26fa62792","self":"/v1/jobs/606a8fbbbfd5484e916709b26fa62792"},"model":"Riva","priority":"bulk","report_id":"606a8fbbbfd5484e916709b26fa62792","status":"succeeded","updated_at":"2026-11-30T15:45:41.389135+00:00","verdict":"authentic"},"report":{"brand":"Castellan","classifier":{"backend":"onnxruntime","device":"cpu","engine_id":"authentiq-default.int8-cpu.onnx@sha256:1cf25a937cd5","name":"authentiq-default","precision":"int8-cpu","thresholds":{"authentic_below":0.05154651105403899,"counterfeit_above":0.6121303749084488},"version":"0.2.0"},"client_ref":"rel-0.1.0-async","confidence":0.967059,"created_at":"2026-11-30T15:45:41.358146+00:00","fusion":{"applied":false,"p_classifier":0.032941,"p_counterfeit":0.032941,"thresholds":{"applied_band":[0.05154651105403899,0.6121303749084488],"authentic_below":0.0241,"classifier_authentic_below":0.05154651105403899,"classifier_counterfeit_above":0.6121303749084488,"counterfeit_above":0.9759,"min_similarity":0.7354,"mismatch_margin":0.02,"overridden":[]}},"heatmaps":{"classes":["authentic"],"colormap":"inferno","images":{"authentic":{"hardware":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/hardware","interior":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/interior","label":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/label","logo":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/logo","overall":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/overall","overview":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/overview","stitching":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/heatmaps/authentic/stitching"}},"notice":"Heatmaps show where the model''s attention was when it scored the item, for the class named. They are an explanation of the model, not proof of where a defect is."},"id":"606a8fbbbfd5484e916709b26fa62792","links":{"page":"/reports/606a8fbbbfd5484e916709b26fa62792","pdf":"/v1/reports/606a8fbbbfd5484e916709b26fa62792.pdf","self":"/v1/reports/606a8fbbbfd5484e916709b26fa62792","views":{"hardware":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/views/hardware","interior":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/views/interior","label":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/views/label","logo":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/views/logo","overall":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/views/overall","stitching":"/v1/reports/606a8fbbbfd5484e916709b26fa62792/views/stitching"}},"missing_views":[],"model":"Riva","probabilities":{"authentic":0.967059,"counterfeit":0.032941},"reasons":[{"code":"classifier","detail":"The classifier''s counterfeit probability is 0.033.","value":0.0329},{"code":"no_references","detail":"No genuine references of Castellan/Riva are enrolled for this model version; the verdict rests on the classifier alone."},{"code":"score_authentic","detail":"Counterfeit probability 0.033 is below 0.052.","value":0.0329},{"code":"automated_decision","detail":"This verdict was produced by automated means (an image classifier and a comparison with enrolled genuine references); it can be reviewed and overridden by a human auditor. Heatmaps show where the model looked, not proof of a flaw."}],"references":{"claimed":{"best":null,"brand":"Castellan","count":0,"matches":[],"mean_top_k":null,"model":"Riva"},"k":5,"model_version":"authentiq-default@0.2.0","other_products":[]},"schema_version":"2","statement_of_reasons":{"automated":true,"how_to_contest":"Ask the operator of this service for a human review, quoting report 606a8fbbbfd5484e916709b26fa62792. A reviewer can confirm or override the verdict; the automated verdict and every review stay on record.","text":"This decision was made by automated means \u2014 an image classifier and a comparison with enrolled genuine reference items \u2014 without human involvement. It rests on the photos submitted and on the facts and reasons listed in this report."},"stored_files":["hardware.jpg","heatmap-authentic-hardware.webp","heatmap-authentic-interior.webp","heatmap-authentic-label.webp","heatmap-authentic-logo.webp","heatmap-authentic-overall.webp","heatmap-authentic-overview.webp","heatmap-authentic-stitching.webp","interior.jpg","label.jpg","logo.jpg","overall.jpg","stitching.jpg"],"submitted_by":{"key_id":"e4b6a3da235c"},"timings":{"batch_size":1,"decode_ms":12.5,"heatmap_ms":25.74,"inference_ms":7.31,"persist_ms":4.8,"quality_ms":8.8,"queue_ms":0.09,"reference_search_ms":0.18,"stitch_ms":1.04,"total_ms":51.88},"verdict":"authentic","views":[{"attention":0.2837,"brightness":124.3,"format":"JPEG","glare":0.0,"height":360,"message":null,"reason":null,"sharpness":72.29,"usable":true,"view":"overall","width":480},{"attention":0.0749,"brightness":70.9,"format":"JPEG","glare":0.0,"height":360,"message":null,"reason":null,"sharpness":55.76,"usable":true,"view":"logo","width":480},{"attention":0.0,"brightness":62.4,"format":"JPEG","glare":0.0,"height":360,"message":null,"reason":null,"sharpness":84.95,"usable":true,"view":"stitching","width":480},{"attention":0.0534,"brightness":94.8,"format":"JPEG","glare":0.0,"height":360,"message":null,"reason":null,"sharpness":143.56,"usable":true,"view":"hardware","width":480},{"attention":0.1396,"brightness":125.7,"format":"JPEG","glare":0.0,"height":360,"message":null,"reason":null,"sharpness":351.17,"usable":true,"view":"label","width":480},{"attention":0.4483,"brightness":175.0,"format":"JPEG","glare":0.0,"height":360,"message":null,"reason":null,"sharpness":72.1,"usable":true,"view":"interior","width":480}]}},"id":"fca39f6d7d7640739829405ba7f3c434","type":"inspection.completed"}', 'failed', 1, '2026-11-30 15:46:21.397202+00', NULL, 'ConnectError: All connection attempts failed', '[{"at": "2026-11-30T15:45:41.401513+00:00", "status_code": null, "error": "ConnectError: All connection attempts failed", "ms": 1.4}]', '2026-11-30 15:45:41.393017+00', NULL);

INSERT INTO webhooks VALUES ('e4b6a3da235c', 'http://127.0.0.1:9/authentiq', 'whsec_EnngBsIxwjkofhC8bF2ZTjEaHaNponqV7bAVKIJv-88', '2026-11-30 15:45:40.875141+00');

SELECT pg_catalog.setval('report_reviews_seq_seq', 1, false);

ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY change_counters
    ADD CONSTRAINT change_counters_pkey PRIMARY KEY (name);

ALTER TABLE ONLY idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (key);

ALTER TABLE ONLY jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY products
    ADD CONSTRAINT products_pkey PRIMARY KEY (key);

ALTER TABLE ONLY reference_embeddings
    ADD CONSTRAINT reference_embeddings_pkey PRIMARY KEY (reference_id, model_version);

ALTER TABLE ONLY reference_items
    ADD CONSTRAINT reference_items_pkey PRIMARY KEY (id);

ALTER TABLE ONLY report_reviews
    ADD CONSTRAINT report_reviews_hash_key UNIQUE (hash);

ALTER TABLE ONLY report_reviews
    ADD CONSTRAINT report_reviews_pkey PRIMARY KEY (seq);

ALTER TABLE ONLY reports
    ADD CONSTRAINT reports_pkey PRIMARY KEY (id);

ALTER TABLE ONLY server_secrets
    ADD CONSTRAINT server_secrets_pkey PRIMARY KEY (name);

ALTER TABLE ONLY webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id);

ALTER TABLE ONLY webhooks
    ADD CONSTRAINT webhooks_pkey PRIMARY KEY (key_id);

CREATE INDEX ix_jobs_created_at ON jobs USING btree (created_at);

CREATE INDEX ix_jobs_key_id ON jobs USING btree (key_id);

CREATE INDEX ix_jobs_status ON jobs USING btree (status);

CREATE INDEX ix_products_seq ON products USING btree (seq);

CREATE INDEX ix_reference_embeddings_seq ON reference_embeddings USING btree (seq);

CREATE INDEX ix_reference_items_created_at ON reference_items USING btree (created_at);

CREATE INDEX ix_reference_items_product_key ON reference_items USING btree (product_key);

CREATE INDEX ix_reference_items_seq ON reference_items USING btree (seq);

CREATE INDEX ix_report_reviews_report_id ON report_reviews USING btree (report_id);

CREATE INDEX ix_reports_brand ON reports USING btree (brand);

CREATE INDEX ix_reports_client_ref ON reports USING btree (client_ref);

CREATE INDEX ix_reports_created_at ON reports USING btree (created_at);

CREATE INDEX ix_reports_final_verdict ON reports USING btree (final_verdict);

CREATE INDEX ix_reports_flagged ON reports USING btree (flagged);

CREATE INDEX ix_reports_key_id ON reports USING btree (key_id);

CREATE INDEX ix_reports_model ON reports USING btree (model);

CREATE INDEX ix_reports_review_status ON reports USING btree (review_status);

CREATE INDEX ix_reports_verdict ON reports USING btree (verdict);

CREATE INDEX ix_webhook_deliveries_job_id ON webhook_deliveries USING btree (job_id);

CREATE INDEX ix_webhook_deliveries_key_id ON webhook_deliveries USING btree (key_id);

CREATE INDEX ix_webhook_deliveries_next_attempt_at ON webhook_deliveries USING btree (next_attempt_at);

CREATE INDEX ix_webhook_deliveries_status ON webhook_deliveries USING btree (status);

CREATE UNIQUE INDEX uq_reference_live_hash ON reference_items USING btree (content_hash) WHERE (deleted_at IS NULL);

ALTER TABLE ONLY reference_embeddings
    ADD CONSTRAINT reference_embeddings_reference_id_fkey FOREIGN KEY (reference_id) REFERENCES reference_items(id);

ALTER TABLE ONLY report_reviews
    ADD CONSTRAINT report_reviews_report_id_fkey FOREIGN KEY (report_id) REFERENCES reports(id);

