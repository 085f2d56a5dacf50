BEGIN TRANSACTION;
CREATE TABLE api_keys (
	id VARCHAR(24) NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	scopes JSON NOT NULL, 
	secret_sha256 VARCHAR(64) NOT NULL, 
	rate_limit VARCHAR(32), 
	created_at DATETIME NOT NULL, 
	revoked_at DATETIME, 
	PRIMARY KEY (id)
);
INSERT INTO "api_keys" VALUES('2a5606623fed','ops','["admin", "review", "submit"]','5ba321276ee6a9723d71ccb5114d9d1af859788b61bcb0d6829fd1755c87b408',NULL,'2026-11-30 15:45:37.762770',NULL);
CREATE TABLE change_counters (
	name VARCHAR(32) NOT NULL, 
	value INTEGER NOT NULL, 
	PRIMARY KEY (name)
);
INSERT INTO "change_counters" VALUES('reviews',1);
INSERT INTO "change_counters" VALUES('references',1);
CREATE TABLE idempotency_keys (
	"key" VARCHAR(240) NOT NULL, 
	fingerprint VARCHAR(64) NOT NULL, 
	result_id VARCHAR(64), 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "idempotency_keys" VALUES('inspections:rel-0.1.0-1','c958d26dc516cae91d42f360fe4b5edd7e354c7f101b6dbc06078ffa27a9bee2','50755955116944fc968af251179e69d3','2026-11-30 15:45:38.165199');
CREATE TABLE jobs (
	id VARCHAR(32) NOT NULL, 
	key_id VARCHAR(24), 
	status VARCHAR(16) NOT NULL, 
	brand VARCHAR(128) NOT NULL, 
	model VARCHAR(128) NOT NULL, 
	client_ref VARCHAR(128), 
	priority VARCHAR(16) NOT NULL, 
	files JSON NOT NULL, 
	attempts INTEGER NOT NULL, 
	lease_until DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	verdict VARCHAR(16), 
	error JSON, 
	PRIMARY KEY (id)
);
INSERT INTO "jobs" VALUES('bcb9b1baba434f31a6ddc23af46a4beb','2a5606623fed','succeeded','Castellan','Riva','rel-0.1.0-async','bulk','{"overall": "0.bin", "logo": "1.bin", "stitching": "2.bin", "hardware": "3.bin", "label": "4.bin", "interior": "5.bin"}',1,NULL,'2026-11-30 15:45:38.274474','2026-11-30 15:45:38.334263','2026-11-30 15:45:38.334263','authentic','null');
CREATE TABLE products (
	"key" VARCHAR(260) NOT NULL, 
	brand VARCHAR(128) NOT NULL, 
	model VARCHAR(128) NOT NULL, 
	thresholds JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	seq INTEGER NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "products" VALUES('verlaine/amande','Verlaine','Amande','{}','2026-11-30 15:45:38.107546',1);
INSERT INTO "products" VALUES('verlaine/orsay','Verlaine','Orsay','{}','2026-11-30 15:45:38.107546',1);
INSERT INTO "products" VALUES('castellan/riva','Castellan','Riva','{}','2026-11-30 15:45:38.107546',1);
INSERT INTO "products" VALUES('castellan/lumen','Castellan','Lumen','{}','2026-11-30 15:45:38.107546',1);
INSERT INTO "products" VALUES('noor & kessler/dune','Noor & Kessler','Dune','{}','2026-11-30 15:45:38.107546',1);
INSERT INTO "products" VALUES('noor & kessler/atlas','Noor & Kessler','Atlas','{}','2026-11-30 15:45:38.107546',1);
CREATE TABLE reference_embeddings (
	reference_id VARCHAR(32) NOT NULL, 
	model_version VARCHAR(200) NOT NULL, 
	vector BLOB NOT NULL, 
	created_at DATETIME NOT NULL, 
	seq INTEGER NOT NULL, 
	PRIMARY KEY (reference_id, model_version), 
	FOREIGN KEY(reference_id) REFERENCES reference_items (id)
);
CREATE TABLE reference_items (
	id VARCHAR(32) NOT NULL, 
	product_key VARCHAR(260) NOT NULL, 
	brand VARCHAR(128) NOT NULL, 
	model VARCHAR(128) NOT NULL, 
	created_at DATETIME NOT NULL, 
	source VARCHAR(128), 
	notes VARCHAR(2000), 
	content_hash VARCHAR(64) NOT NULL, 
	body JSON NOT NULL, 
	deleted_at DATETIME, 
	deleted_reason VARCHAR(2000), 
	seq INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE report_reviews (
	seq INTEGER NOT NULL, 
	report_id VARCHAR(32) NOT NULL, 
	created_at DATETIME NOT NULL, 
	reviewer VARCHAR(128) NOT NULL, 
	decision VARCHAR(16) NOT NULL, 
	previous_verdict VARCHAR(16) NOT NULL, 
	verdict VARCHAR(16) NOT NULL, 
	reason VARCHAR(4000) NOT NULL, 
	prev_hash VARCHAR(64) NOT NULL, 
	hash VARCHAR(64) NOT NULL, 
	PRIMARY KEY (seq), 
	FOREIGN KEY(report_id) REFERENCES reports (id), 
	UNIQUE (hash)
);
INSERT INTO "report_reviews" VALUES(1,'50755955116944fc968af251179e69d3','2026-11-30 15:45:38.264732','auditor-1','override','authentic','counterfeit','release 0.1.0 review','0000000000000000000000000000000000000000000000000000000000000000','cc9815741b6148c81d9baa683f6789e4f7627443a4a802d9e6b27c4fe4c39b7e');
CREATE TABLE reports (
	id VARCHAR(32) NOT NULL, 
	created_at DATETIME NOT NULL, 
	client_ref VARCHAR(128), 
	brand VARCHAR(128) NOT NULL, 
	model VARCHAR(128) NOT NULL, 
	verdict VARCHAR(16) NOT NULL, 
	final_verdict VARCHAR(16) NOT NULL, 
	review_status VARCHAR(16) NOT NULL, 
	flagged BOOLEAN NOT NULL, 
	key_id VARCHAR(64), 
	version INTEGER NOT NULL, 
	p_counterfeit FLOAT NOT NULL, 
	classifier VARCHAR(200) NOT NULL, 
	body JSON NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "reports" VALUES('50755955116944fc968af251179e69d3','2026-11-30 15:45:38.189084','rel-0.1.0-sync','Castellan','Riva','authentic','counterfeit','overridden',0,'2a5606623fed',1,3.29412445425987243652e-02,'authentiq-default@0.2.0','{"schema_version": "2", "id": "50755955116944fc968af251179e69d3", "created_at": "2026-11-30T15:45:38.189084+00:00", "client_ref": "rel-0.1.0-sync", "brand": "Castellan", "model": "Riva", "verdict": "authentic", "confidence": 0.967059, "probabilities": {"authentic": 0.967059, "counterfeit": 0.032941}, "reasons": [{"code": "classifier", "value": 0.0329, "detail": "The classifier''s counterfeit probability is 0.033."}, {"code": "no_references", "detail": "No genuine references of Castellan/Riva are enrolled for this model version; the verdict rests on the classifier alone."}, {"code": "score_authentic", "value": 0.0329, "detail": "Counterfeit probability 0.033 is below 0.052."}, {"code": "automated_decision", "detail": "This verdict was produced by automated means (an image classifier and a comparison with enrolled genuine references); it can be reviewed and overridden by a human auditor. Heatmaps show where the model looked, not proof of a flaw."}], "fusion": {"applied": false, "p_classifier": 0.032941, "p_counterfeit": 0.032941, "thresholds": {"classifier_authentic_below": 0.05154651105403899, "classifier_counterfeit_above": 0.6121303749084488, "authentic_below": 0.0241, "counterfeit_above": 0.9759, "min_similarity": 0.7354, "mismatch_margin": 0.02, "overridden": [], "applied_band": [0.05154651105403899, 0.6121303749084488]}}, "views": [{"view": "overall", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 72.29, "brightness": 124.3, "glare": 0.0, "attention": 0.2837}, {"view": "logo", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 55.76, "brightness": 70.9, "glare": 0.0, "attention": 0.0749}, {"view": "stitching", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 84.95, "brightness": 62.4, "glare": 0.0, "attention": 0.0}, {"view": "hardware", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 143.56, "brightness": 94.8, "glare": 0.0, "attention": 0.0534}, {"view": "label", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 351.17, "brightness": 125.7, "glare": 0.0, "attention": 0.1396}, {"view": "interior", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 72.1, "brightness": 175.0, "glare": 0.0, "attention": 0.4483}], "missing_views": [], "classifier": {"name": "authentiq-default", "version": "0.2.0", "precision": "int8-cpu", "backend": "onnxruntime", "device": "cpu", "engine_id": "authentiq-default.int8-cpu.onnx@sha256:1cf25a937cd5", "thresholds": {"authentic_below": 0.05154651105403899, "counterfeit_above": 0.6121303749084488}}, "statement_of_reasons": {"automated": true, "text": "This decision was made by automated means \u2014 an image classifier and a comparison with enrolled genuine reference items \u2014 without human involvement. It rests on the photos submitted and on the facts and reasons listed in this report.", "how_to_contest": "Ask the operator of this service for a human review, quoting report 50755955116944fc968af251179e69d3. A reviewer can confirm or override the verdict; the automated verdict and every review stay on record."}, "timings": {"decode_ms": 20.14, "quality_ms": 1.32, "stitch_ms": 1.81, "queue_ms": 0.12, "inference_ms": 5.53, "batch_size": 1, "reference_search_ms": 0.19, "heatmap_ms": 47.6}, "links": {"self": "/v1/reports/50755955116944fc968af251179e69d3", "page": "/reports/50755955116944fc968af251179e69d3", "pdf": "/v1/reports/50755955116944fc968af251179e69d3.pdf", "views": {"overall": "/v1/reports/50755955116944fc968af251179e69d3/views/overall", "logo": "/v1/reports/50755955116944fc968af251179e69d3/views/logo", "stitching": "/v1/reports/50755955116944fc968af251179e69d3/views/stitching", "hardware": "/v1/reports/50755955116944fc968af251179e69d3/views/hardware", "label": "/v1/reports/50755955116944fc968af251179e69d3/views/label", "interior": "/v1/reports/50755955116944fc968af251179e69d3/views/interior"}}, "references": {"model_version": "authentiq-default@0.2.0", "k": 5, "claimed": {"brand": "Castellan", "model": "Riva", "count": 0, "best": null, "mean_top_k": null, "matches": []}, "other_products": []}, "submitted_by": {"key_id": "2a5606623fed"}, "heatmaps": {"classes": ["authentic"], "colormap": "inferno", "notice": "Heatmaps show where the model''s attention was when it scored the item, for the class named. They are an explanation of the model, not proof of where a defect is.", "images": {"authentic": {"overall": "/v1/reports/50755955116944fc968af251179e69d3/heatmaps/authentic/overall", "logo": "/v1/reports/50755955116944fc968af251179e69d3/heatmaps/authentic/logo", "stitching": "/v1/reports/50755955116944fc968af251179e69d3/heatmaps/authentic/stitching", "hardware": "/v1/reports/50755955116944fc968af251179e69d3/heatmaps/authentic/hardware", "label": "/v1/reports/50755955116944fc968af251179e69d3/heatmaps/authentic/label", "interior": "/v1/reports/50755955116944fc968af251179e69d3/heatmaps/authentic/interior", "overview": "/v1/reports/50755955116944fc968af251179e69d3/heatmaps/authentic/overview"}}}, "stored_files": ["hardware.jpg", "heatmap-authentic-hardware.webp", "heatmap-authentic-interior.webp", "heatmap-authentic-label.webp", "heatmap-authentic-logo.webp", "heatmap-authentic-overall.webp", "heatmap-authentic-overview.webp", "heatmap-authentic-stitching.webp", "interior.jpg", "label.jpg", "logo.jpg", "overall.jpg", "stitching.jpg"]}');
INSERT INTO "reports" VALUES('bcb9b1baba434f31a6ddc23af46a4beb','2026-11-30 15:45:38.300539','rel-0.1.0-async','Castellan','Riva','authentic','authentic','unreviewed',0,'2a5606623fed',0,3.29412445425987243652e-02,'authentiq-default@0.2.0','{"schema_version": "2", "id": "bcb9b1baba434f31a6ddc23af46a4beb", "created_at": "2026-11-30T15:45:38.300539+00:00", "client_ref": "rel-0.1.0-async", "brand": "Castellan", "model": "Riva", "verdict": "authentic", "confidence": 0.967059, "probabilities": {"authentic": 0.967059, "counterfeit": 0.032941}, "reasons": [{"code": "classifier", "value": 0.0329, "detail": "The classifier''s counterfeit probability is 0.033."}, {"code": "no_references", "detail": "No genuine references of Castellan/Riva are enrolled for this model version; the verdict rests on the classifier alone."}, {"code": "score_authentic", "value": 0.0329, "detail": "Counterfeit probability 0.033 is below 0.052."}, {"code": "automated_decision", "detail": "This verdict was produced by automated means (an image classifier and a comparison with enrolled genuine references); it can be reviewed and overridden by a human auditor. Heatmaps show where the model looked, not proof of a flaw."}], "fusion": {"applied": false, "p_classifier": 0.032941, "p_counterfeit": 0.032941, "thresholds": {"classifier_authentic_below": 0.05154651105403899, "classifier_counterfeit_above": 0.6121303749084488, "authentic_below": 0.0241, "counterfeit_above": 0.9759, "min_similarity": 0.7354, "mismatch_margin": 0.02, "overridden": [], "applied_band": [0.05154651105403899, 0.6121303749084488]}}, "views": [{"view": "overall", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 72.29, "brightness": 124.3, "glare": 0.0, "attention": 0.2837}, {"view": "logo", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 55.76, "brightness": 70.9, "glare": 0.0, "attention": 0.0749}, {"view": "stitching", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 84.95, "brightness": 62.4, "glare": 0.0, "attention": 0.0}, {"view": "hardware", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 143.56, "brightness": 94.8, "glare": 0.0, "attention": 0.0534}, {"view": "label", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 351.17, "brightness": 125.7, "glare": 0.0, "attention": 0.1396}, {"view": "interior", "usable": true, "reason": null, "message": null, "format": "JPEG", "width": 480, "height": 360, "sharpness": 72.1, "brightness": 175.0, "glare": 0.0, "attention": 0.4483}], "missing_views": [], "classifier": {"name": "authentiq-default", "version": "0.2.0", "precision": "int8-cpu", "backend": "onnxruntime", "device": "cpu", "engine_id": "authentiq-default.int8-cpu.onnx@sha256:1cf25a937cd5", "thresholds": {"authentic_below": 0.05154651105403899, "counterfeit_above": 0.6121303749084488}}, "statement_of_reasons": {"automated": true, "text": "This decision was made by automated means \u2014 an image classifier and a comparison with enrolled genuine reference items \u2014 without human involvement. It rests on the photos submitted and on the facts and reasons listed in this report.", "how_to_contest": "Ask the operator of this service for a human review, quoting report bcb9b1baba434f31a6ddc23af46a4beb. A reviewer can confirm or override the verdict; the automated verdict and every review stay on record."}, "timings": {"decode_ms": 11.27, "quality_ms": 6.98, "stitch_ms": 0.92, "queue_ms": 0.09, "inference_ms": 3.3, "batch_size": 1, "reference_search_ms": 0.17, "heatmap_ms": 26.17}, "links": {"self": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb", "page": "/reports/bcb9b1baba434f31a6ddc23af46a4beb", "pdf": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb.pdf", "views": {"overall": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/views/overall", "logo": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/views/logo", "stitching": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/views/stitching", "hardware": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/views/hardware", "label": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/views/label", "interior": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/views/interior"}}, "references": {"model_version": "authentiq-default@0.2.0", "k": 5, "claimed": {"brand": "Castellan", "model": "Riva", "count": 0, "best": null, "mean_top_k": null, "matches": []}, "other_products": []}, "submitted_by": {"key_id": "2a5606623fed"}, "heatmaps": {"classes": ["authentic"], "colormap": "inferno", "notice": "Heatmaps show where the model''s attention was when it scored the item, for the class named. They are an explanation of the model, not proof of where a defect is.", "images": {"authentic": {"overall": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/overall", "logo": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/logo", "stitching": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/stitching", "hardware": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/hardware", "label": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/label", "interior": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/interior", "overview": "/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/overview"}}}, "stored_files": ["hardware.jpg", "heatmap-authentic-hardware.webp", "heatmap-authentic-interior.webp", "heatmap-authentic-label.webp", "heatmap-authentic-logo.webp", "heatmap-authentic-overall.webp", "heatmap-authentic-overview.webp", "heatmap-authentic-stitching.webp", "interior.jpg", "label.jpg", "logo.jpg", "overall.jpg", "stitching.jpg"]}');
CREATE TABLE server_secrets (
	name VARCHAR(32) NOT NULL, 
	value VARCHAR(128) NOT NULL, 
	PRIMARY KEY (name)
);
INSERT INTO "server_secrets" VALUES('session','6927a546f20f41f80fcdc82a03e3ea0cff535c6572d03f498b1cf1d9f708624b');
CREATE TABLE webhook_deliveries (
	id VARCHAR(32) NOT NULL, 
	key_id VARCHAR(24) NOT NULL, 
	job_id VARCHAR(32) NOT NULL, 
	event VARCHAR(64) NOT NULL, 
	url VARCHAR(2048) NOT NULL, 
	payload VARCHAR NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME NOT NULL, 
	last_status_code INTEGER, 
	last_error VARCHAR(500), 
	log JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	delivered_at DATETIME, 
	PRIMARY KEY (id)
);
INSERT INTO "webhook_deliveries" VALUES('1f4076961414468ab419bec846fdc75a','2a5606623fed','bcb9b1baba434f31a6ddc23af46a4beb','inspection.completed','http://127.0.0.1:9/authentiq','{"created_at":"2026-11-30T15:45:38.336928+00:00","data":{"job":{"attempts":1,"brand":"Castellan","client_ref":"rel-0.1.0-async","created_at":"2026-11-30T15:45:38.274474+00:00","error":null,"finished_at":"2026-11-30T15:45:38.334263+00:00","id":"bcb9b1baba434f31a6ddc23af46a4beb","links":{"report":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb","self":"/v1/jobs/bcb9b1baba434f31a6ddc23af46a4beb"},"model":"Riva","priority":"bulk","report_id":"bcb9b1baba434f31a6ddc23af46a4beb","status":"succeeded","updated_at":"2026-11-30T15:45:38.334263+00:00","verdict":"authentic"},"report":{"brand":"Castellan","classifier":{"backend":"onnxruntime","device":"cpu","engine_id":"authentiq-default.int8-cpu.onnx@sha256:1cf25a937cd5","name":"authentiq-default","precision":"int8-cpu","thresholds":{"authentic_below":0.05154651105403899,"counterfeit_above":0.6121303749084488},"version":"0.2.0"},"client_ref":"rel-0.1.0-async","confidence":0.967059,"created_at":"2026-11-30T15:45:38.300539+00:00","fusion":{"applied":false,"p_classifier":0.032941,"p_counterfeit":0.032941,"thresholds":{"applied_band":[0.05154651105403899,0.6121303749084488],"authentic_below":0.0241,"classifier_authentic_below":0.05154651105403899,"classifier_counterfeit_above":0.6121303749084488,"counterfeit_above":0.9759,"min_similarity":0.7354,"mismatch_margin":0.02,"overridden":[]}},"heatmaps":{"classes":["authentic"],"colormap":"inferno","images":{"authentic":{"hardware":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/hardware","interior":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/interior","label":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/label","logo":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/logo","overall":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/overall","overview":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/overview","stitching":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/heatmaps/authentic/stitching"}},"notice":"Heatmaps show where the model''s attention was when it scored the item, for the class named. They are an explanation of the model, not proof of where a defect is."},"id":"bcb9b1baba434f31a6ddc23af46a4beb","links":{"page":"/reports/bcb9b1baba434f31a6ddc23af46a4beb","pdf":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb.pdf","self":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb","views":{"hardware":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/views/hardware","interior":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/views/interior","label":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/views/label","logo":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/views/logo","overall":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/views/overall","stitching":"/v1/reports/bcb9b1baba434f31a6ddc23af46a4beb/views/stitching"}},"missing_views":[],"model":"Riva","probabilities":{"authentic":0.967059,"counterfeit":0.032941},"reasons":[{"code":"classifier","detail":"The classifier''s counterfeit probability is 0.033.","value":0.0329},{"code":"no_references","detail":"No genuine references of Castellan/Riva are enrolled for this model version; the verdict rests on the classifier alone."},{"code":"score_authentic","detail":"Counterfeit probability 0.033 is below 0.052.","value":0.0329},{"code":"automated_decision","detail":"This verdict was produced by automated means (an image classifier and a comparison with enrolled genuine references); it can be reviewed and overridden by a human auditor. Heatmaps show where the model looked, not proof of a flaw."}],"references":{"claimed":{"best":null,"brand":"Castellan","count":0,"matches":[],"mean_top_k":null,"model":"Riva"},"k":5,"model_version":"authentiq-default@0.2.0","other_products":[]},"schema_version":"2","statement_of_reasons":{"automated":true,"how_to_contest":"Ask the operator of this service for a human review, quoting report bcb9b1baba434f31a6ddc23af46a4beb. A reviewer can confirm or override the verdict; the automated verdict and every review stay on record.","text":"This decision was made by automated means \u2014 an image classifier and a comparison with enrolled genuine reference items \u2014 without human involvement. It rests on the photos submitted and on the facts and reasons listed in this report."},"stored_files":["hardware.jpg","heatmap-authentic-hardware.webp","heatmap-authentic-interior.webp","heatmap-authentic-label.webp","heatmap-authentic-logo.webp","heatmap-authentic-overall.webp","heatmap-authentic-overview.webp","heatmap-authentic-stitching.webp","interior.jpg","label.jpg","logo.jpg","overall.jpg","stitching.jpg"],"submitted_by":{"key_id":"2a5606623fed"},"timings":{"batch_size":1,"decode_ms":11.27,"heatmap_ms":26.17,"inference_ms":3.3,"persist_ms":3.11,"quality_ms":6.98,"queue_ms":0.09,"reference_search_ms":0.17,"stitch_ms":0.92,"total_ms":44.7},"verdict":"authentic","views":[{"attention":0.2837,"brightness":124.3,"format":"JPEG","glare":0.0,"height":360,"message":null,"reason":null,"sharpness":72.29,"usable":true,"view":"overall","width":480},{"attention":0.0749,"brightness":70.9,"format":"JPEG","glare":0.0,"height":360,"message":null,"reason":null,"sharpness":55.76,"usable":true,"view":"logo","width":480},{"attention":0.0,"brightness":62.4,"format":"JPEG","glare":0.0,"height":360,"message":null,"reason":null,"sharpness":84.95,"usable":true,"view":"stitching","width":480},{"attention":0.0534,"brightness":94.8,"format":"JPEG","glare":0.0,"height":360,"message":null,"reason":null,"sharpness":143.56,"usable":true,"view":"hardware","width":480},{"attention":0.1396,"brightness":125.7,"format":"JPEG","glare":0.0,"height":360,"message":null,"reason":null,"sharpness":351.17,"usable":true,"view":"label","width":480},{"attention":0.4483,"brightness":175.0,"format":"JPEG","glare":0.0,"height":360,"message":null,"reason":null,"sharpness":72.1,"usable":true,"view":"interior","width":480}]}},"id":"1f4076961414468ab419bec846fdc75a","type":"inspection.completed"}','failed',1,'2026-11-30 15:46:18.344078',NULL,'ConnectError: All connection attempts failed','[{"at": "2026-11-30T15:45:38.346975+00:00", "status_code": null, "error": "ConnectError: All connection attempts failed", "ms": 1.8}]','2026-11-30 15:45:38.336928',NULL);
CREATE TABLE webhooks (
	key_id VARCHAR(24) NOT NULL, 
	url VARCHAR(2048) NOT NULL, 
	secret VARCHAR(128) NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (key_id)
);
INSERT INTO "webhooks" VALUES('2a5606623fed','http://127.0.0.1:9/authentiq','whsec_BZLSymFD0ZrjCNSmhXm_bT1ZSQibusPq_TT9dVfQbNI','2026-11-30 15:45:37.773136');
CREATE INDEX ix_products_seq ON products (seq);
CREATE INDEX ix_reference_items_seq ON reference_items (seq);
CREATE INDEX ix_reference_items_product_key ON reference_items (product_key);
CREATE INDEX ix_reference_items_created_at ON reference_items (created_at);
CREATE UNIQUE INDEX uq_reference_live_hash ON reference_items (content_hash) WHERE deleted_at IS NULL;
CREATE INDEX ix_reports_key_id ON reports (key_id);
CREATE INDEX ix_reports_brand ON reports (brand);
CREATE INDEX ix_reports_review_status ON reports (review_status);
CREATE INDEX ix_reports_verdict ON reports (verdict);
CREATE INDEX ix_reports_final_verdict ON reports (final_verdict);
CREATE INDEX ix_reports_flagged ON reports (flagged);
CREATE INDEX ix_reports_model ON reports (model);
CREATE INDEX ix_reports_created_at ON reports (created_at);
CREATE INDEX ix_reports_client_ref ON reports (client_ref);
CREATE INDEX ix_webhook_deliveries_job_id ON webhook_deliveries (job_id);
CREATE INDEX ix_webhook_deliveries_key_id ON webhook_deliveries (key_id);
CREATE INDEX ix_webhook_deliveries_next_attempt_at ON webhook_deliveries (next_attempt_at);
CREATE INDEX ix_webhook_deliveries_status ON webhook_deliveries (status);
CREATE INDEX ix_jobs_status ON jobs (status);
CREATE INDEX ix_jobs_created_at ON jobs (created_at);
CREATE INDEX ix_jobs_key_id ON jobs (key_id);
CREATE INDEX ix_reference_embeddings_seq ON reference_embeddings (seq);
CREATE INDEX ix_report_reviews_report_id ON report_reviews (report_id);
COMMIT;
