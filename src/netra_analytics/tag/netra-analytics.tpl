___TERMS_OF_SERVICE___

By creating or modifying this file you agree to Google Tag Manager's Community
Template Gallery Developer Terms of Service available at
https://developers.google.com/tag-manager/gallery-tos (or such other URL as
Google may provide), as modified from time to time.


___INFO___

{
  "type": "TAG",
  "id": "cvt_temp_public_id",
  "version": 1,
  "securityGroups": [],
  "displayName": "Netra Analytics",
  "categories": [
    "ANALYTICS"
  ],
  "brand": {
    "id": "netra_analytics",
    "displayName": "Netra Analytics"
  },
  "description": "Loads the Netra Analytics browser tag from your Netra Analytics service: typed events (chat, threads, features, surveys, feedback, performance, errors), batched and retried, honouring GTM Consent Mode (analytics_storage), Do-Not-Track and Global Privacy Control.",
  "containerContexts": [
    "WEB"
  ]
}


___TEMPLATE_PARAMETERS___

[
  {
    "type": "TEXT",
    "name": "serviceUrl",
    "displayName": "Netra Analytics service URL",
    "simpleValueType": true,
    "help": "Where the service runs, without a trailing slash, e.g. https://analytics.example.com. Also allow this host in the template's Permissions tab (Injects scripts).",
    "valueValidators": [
      {
        "type": "NON_EMPTY"
      },
      {
        "type": "REGEX",
        "args": [
          "^https?://[^/]+$"
        ],
        "errorMessage": "A scheme and host only, e.g. https://analytics.example.com"
      }
    ]
  },
  {
    "type": "TEXT",
    "name": "userId",
    "displayName": "User ID",
    "simpleValueType": true,
    "help": "A variable holding your signed-in user's id (e.g. {{DL - user_id}}); empty: anonymous."
  },
  {
    "type": "TEXT",
    "name": "environment",
    "displayName": "Environment",
    "simpleValueType": true,
    "help": "production, staging, ...: stored with every event.",
    "defaultValue": "production"
  },
  {
    "type": "TEXT",
    "name": "appVersion",
    "displayName": "App version",
    "simpleValueType": true,
    "help": "Your front end's version: stored with every event."
  },
  {
    "type": "SELECT",
    "name": "consentMode",
    "displayName": "Consent",
    "macrosInSelect": false,
    "simpleValueType": true,
    "selectItems": [
      {
        "value": "consent_mode",
        "displayValue": "Wait for GTM Consent Mode (analytics_storage granted)"
      },
      {
        "value": "not_required",
        "displayValue": "Not required: consent is handled before this tag fires"
      }
    ],
    "defaultValue": "consent_mode",
    "help": "With Consent Mode, nothing is sent or stored until analytics_storage is granted; events from before are sent then, and dropped if it is denied."
  },
  {
    "type": "GROUP",
    "name": "capture",
    "displayName": "Automatic capture",
    "groupStyle": "ZIPPY_OPEN",
    "subParams": [
      {
        "type": "CHECKBOX",
        "name": "captureChat",
        "checkboxText": "Chat messages (netra_chat_message DOM events)",
        "simpleValueType": true,
        "defaultValue": true,
        "help": "Your app dispatches document events named netra_chat_message whose detail is a chat_interaction."
      },
      {
        "type": "CHECKBOX",
        "name": "capturePageLoad",
        "checkboxText": "Page load timing (Navigation Timing)",
        "simpleValueType": true,
        "defaultValue": true,
        "help": "A performance_metric event per page load."
      },
      {
        "type": "CHECKBOX",
        "name": "captureErrors",
        "checkboxText": "JavaScript errors and unhandled promise rejections",
        "simpleValueType": true,
        "defaultValue": true,
        "help": "An error_tracking event per error."
      }
    ]
  },
  {
    "type": "GROUP",
    "name": "advanced",
    "displayName": "Advanced",
    "groupStyle": "ZIPPY_CLOSED",
    "subParams": [
      {
        "type": "CHECKBOX",
        "name": "respectDoNotTrack",
        "checkboxText": "Honour Do-Not-Track and Global Privacy Control",
        "simpleValueType": true,
        "defaultValue": true,
        "help": "Send nothing when the browser asks not to be tracked."
      },
      {
        "type": "TEXT",
        "name": "batchSize",
        "displayName": "Batch size",
        "simpleValueType": true,
        "help": "Events per request; a batch is sent when this many wait.",
        "valueValidators": [
          {
            "type": "POSITIVE_NUMBER"
          }
        ],
        "defaultValue": "20"
      },
      {
        "type": "TEXT",
        "name": "flushIntervalMs",
        "displayName": "Flush interval (ms)",
        "simpleValueType": true,
        "help": "The longest an event waits before it is sent.",
        "valueValidators": [
          {
            "type": "POSITIVE_NUMBER"
          }
        ],
        "defaultValue": "2000"
      },
      {
        "type": "CHECKBOX",
        "name": "debug",
        "checkboxText": "Debug: warn in the console about bad or rejected events",
        "simpleValueType": true,
        "defaultValue": false,
        "help": "Leave off in production."
      }
    ]
  }
]


___SANDBOXED_JS_FOR_WEB_TEMPLATE___

const injectScript = require('injectScript');
const setInWindow = require('setInWindow');
const callInWindow = require('callInWindow');
const isConsentGranted = require('isConsentGranted');
const addConsentListener = require('addConsentListener');
const getContainerVersion = require('getContainerVersion');
const makeNumber = require('makeNumber');
const log = require('logToConsole');

const TAG_VERSION = '1.1.0';
const requireConsent = data.consentMode !== 'not_required';
const config = {
  endpoint: data.serviceUrl + '/api/analytics/events',
  userId: data.userId || '',
  gtmContainerId: getContainerVersion().containerId,
  environment: data.environment || '',
  appVersion: data.appVersion || '',
  batchSize: makeNumber(data.batchSize) || 20,
  flushIntervalMs: makeNumber(data.flushIntervalMs) || 2000,
  captureChat: data.captureChat !== false,
  capturePageLoad: data.capturePageLoad !== false,
  captureErrors: data.captureErrors !== false,
  respectDoNotTrack: data.respectDoNotTrack !== false,
  requireConsent: requireConsent,
  debug: data.debug === true
};
if (requireConsent && isConsentGranted('analytics_storage')) {
  config.consent = true;
}
setInWindow('netraAnalyticsConfig', config, true);

injectScript(data.serviceUrl + '/tag/' + TAG_VERSION + '/netra-analytics.js', function () {
  if (requireConsent) {
    addConsentListener('analytics_storage', function (consentType, granted) {
      callInWindow('netraAnalytics.setConsent', granted);
    });
  }
  data.gtmOnSuccess();
}, function () {
  log('Netra Analytics: the tag could not be loaded from ' + data.serviceUrl);
  data.gtmOnFailure();
}, 'netra-analytics-' + TAG_VERSION);


___WEB_PERMISSIONS___

[
  {
    "instance": {
      "key": {
        "publicId": "logging",
        "versionId": "1"
      },
      "param": [
        {
          "key": "environments",
          "value": {
            "type": 1,
            "string": "debug"
          }
        }
      ]
    },
    "clientAnnotations": {
      "isEditedByUser": true
    },
    "isRequired": true
  },
  {
    "instance": {
      "key": {
        "publicId": "inject_script",
        "versionId": "1"
      },
      "param": [
        {
          "key": "urls",
          "value": {
            "type": 2,
            "listItem": [
              {
                "type": 1,
                "string": "https://analytics.example.com/tag/*"
              }
            ]
          }
        }
      ]
    },
    "clientAnnotations": {
      "isEditedByUser": true
    },
    "isRequired": true
  },
  {
    "instance": {
      "key": {
        "publicId": "access_globals",
        "versionId": "1"
      },
      "param": [
        {
          "key": "keys",
          "value": {
            "type": 2,
            "listItem": [
              {
                "type": 3,
                "mapKey": [
                  {
                    "type": 1,
                    "string": "key"
                  },
                  {
                    "type": 1,
                    "string": "read"
                  },
                  {
                    "type": 1,
                    "string": "write"
                  },
                  {
                    "type": 1,
                    "string": "execute"
                  }
                ],
                "mapValue": [
                  {
                    "type": 1,
                    "string": "netraAnalyticsConfig"
                  },
                  {
                    "type": 8,
                    "boolean": true
                  },
                  {
                    "type": 8,
                    "boolean": true
                  },
                  {
                    "type": 8,
                    "boolean": false
                  }
                ]
              },
              {
                "type": 3,
                "mapKey": [
                  {
                    "type": 1,
                    "string": "key"
                  },
                  {
                    "type": 1,
                    "string": "read"
                  },
                  {
                    "type": 1,
                    "string": "write"
                  },
                  {
                    "type": 1,
                    "string": "execute"
                  }
                ],
                "mapValue": [
                  {
                    "type": 1,
                    "string": "netraAnalytics.setConsent"
                  },
                  {
                    "type": 8,
                    "boolean": true
                  },
                  {
                    "type": 8,
                    "boolean": false
                  },
                  {
                    "type": 8,
                    "boolean": true
                  }
                ]
              }
            ]
          }
        }
      ]
    },
    "clientAnnotations": {
      "isEditedByUser": true
    },
    "isRequired": true
  },
  {
    "instance": {
      "key": {
        "publicId": "access_consent",
        "versionId": "1"
      },
      "param": [
        {
          "key": "consentTypes",
          "value": {
            "type": 2,
            "listItem": [
              {
                "type": 3,
                "mapKey": [
                  {
                    "type": 1,
                    "string": "consentType"
                  },
                  {
                    "type": 1,
                    "string": "read"
                  },
                  {
                    "type": 1,
                    "string": "write"
                  }
                ],
                "mapValue": [
                  {
                    "type": 1,
                    "string": "analytics_storage"
                  },
                  {
                    "type": 8,
                    "boolean": true
                  },
                  {
                    "type": 8,
                    "boolean": false
                  }
                ]
              }
            ]
          }
        }
      ]
    },
    "clientAnnotations": {
      "isEditedByUser": true
    },
    "isRequired": true
  },
  {
    "instance": {
      "key": {
        "publicId": "read_container_data",
        "versionId": "1"
      },
      "param": []
    },
    "clientAnnotations": {
      "isEditedByUser": true
    },
    "isRequired": true
  }
]


___TESTS___

scenarios:
- name: loads the versioned tag from the service and configures it
  code: |-
    mock('isConsentGranted', () => false);
    runCode({serviceUrl: 'https://analytics.example.com', userId: 'u1', consentMode: 'consent_mode'});
    assertApi('injectScript').wasCalled();
    assertApi('setInWindow').wasCalled();
    assertApi('gtmOnSuccess').wasCalled();


___NOTES___

Netra Analytics browser tag 1.1.0. Import in GTM: Templates > Tag Templates > New > menu >
Import. Then allow your service's host under Permissions > Injects scripts (the template ships
with https://analytics.example.com/tag/*). See the service's README, "Browser tag and GTM".
